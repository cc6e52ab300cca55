"""The documentation site builds strictly (no broken link, page or reference) and its generated
reference pages, opened in a real browser (headless Chromium), show what the code declares."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rro.config import ENV_OPTIONS, ExploreConfig
from tests.test_report_page import _browser, _chromium

ROOT = Path(__file__).resolve().parent.parent


def _require_mkdocs() -> None:
    if importlib.util.find_spec("mkdocs") and importlib.util.find_spec("mkdocstrings"):
        return
    if os.environ.get("RRO_REQUIRE_MKDOCS") == "1":
        pytest.fail("RRO_REQUIRE_MKDOCS=1 but the docs tools are not installed (pip install -e '.[docs]')")
    pytest.skip("the docs tools are not installed (pip install -e '.[docs]')")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _require_mkdocs()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def _text(dom: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def test_the_settings_page_shows_every_setting_as_declared(site, tmp_path):
    chromium = _chromium()
    page = site / "reference" / "settings" / "index.html"
    dom = _browser(chromium, tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    # The theme rendered its navigation, with the pages of every section.
    assert 'class="md-nav' in dom
    for title in ("Getting started", "Concepts", "Running at scale (Ray)", "compare-large", "Python API"):
        assert title in _text(dom), title
    # Every field of ExploreConfig is a row of its table, with its declared description.
    section = dom[dom.index('id="exploreconfig'):]  # its heading, not its entry in the contents
    section, after_table = section[: section.index("</table>")], section[section.index("</table>"):]
    rows = {re.sub(r"<[^>]+>", "", row.split("</td>")[0]).strip(): _text(row)
            for row in re.findall(r"<tr>\s*<td>(.*?)</tr>", section, re.S)}
    for name, field in ExploreConfig.model_fields.items():
        if name in ENV_OPTIONS:  # an environment's own: listed by name here, described in its environment's table
            assert f"<code>{name}</code>" in after_table[: after_table.index("<h2")], name
            continue
        assert name in rows, name
        # (Markdown renders `code` as code: compare the words, without backticks and spacing.)
        assert re.sub(r"[`\s]", "", field.description) in re.sub(r"\s", "", rows[name]), name
    assert "true" in rows["rise_at_max"] and "--rise-at-max" in rows["rise_at_max"]


def test_the_cli_page_lists_every_command(site):
    import typer.main

    from rro.cli import app

    def names(group, prefix: str = "rro"):
        for name, command in group.commands.items():
            yield from names(command, f"{prefix} {name}") if hasattr(command, "commands") else [f"{prefix} {name}"]

    text = _text((site / "reference" / "cli" / "index.html").read_text())
    commands = list(names(typer.main.get_command(app)))
    assert "rro data experts" in commands and "rro explore" in commands
    for name in commands:
        assert name in text, name


def test_the_results_pages_embed_their_plots(site):
    page = site / "results" / "compare-large" / "index.html"
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page.read_text())
    assert any(image.endswith("candidates_per_step.png") for image in images)
    for image in images:
        assert (page.parent / image).resolve().is_file(), image
