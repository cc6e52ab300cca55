"""The README stays short and true: its results table and its figure come from the committed
results, and its links lead to files that exist."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 250


def test_the_results_table_is_generated_from_the_results_files():
    readme = README.read_text()
    generated = _script("readme_results").updated(readme)
    assert generated == readme, "README.md's results table is out of date: run python docs/scripts/readme_results.py"
    # And the generator reads what it says: the fixed row's reward and pairs come from results.csv.
    row = next(line for line in readme.splitlines() if line.startswith("| fixed |"))
    assert "| 22.8 (17.1–28.8) |" in row and "| 196 |" in row


def test_the_figure_is_drawn_from_the_record():
    module = _script("walk_figure")
    committed = json.loads((REPO / "docs" / "images" / "rising-walk.json").read_text())
    assert module.walk_data(committed["task_id"]) == committed
    assert (REPO / "docs" / "images" / "rising-walk.png").stat().st_size > 10_000


def test_the_readme_links_lead_somewhere():
    targets = re.findall(r"\]\(([^)#\s]+)", README.read_text())
    assert targets
    for target in targets:
        if not target.startswith(("http://", "https://")):
            assert (REPO / target).exists(), target
