"""Preference pairs as a Hugging Face dataset: `datasets` reads pairs.jsonl as written, `rro pairs
export` round-trips through save_to_disk and Parquet with a card that says what produced the pairs,
and TRL's DPOTrainer trains on the export in a plain script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rro.cli import app

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "docs" / "results" / "compare-large" / "record"  # a real run: five explorations, 802 pairs
METHODS = ["rising", "fixed", "fixed-expert", "rising-expert", "ipr"]
runner = CliRunner()


def _said(result) -> str:
    return " ".join(result.output.split())  # the terminal's line breaks left out


def _records(method: str) -> list[dict]:
    path = RECORD / method / "iter1" / "explore" / "pairs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "pairs"
    result = runner.invoke(app, ["pairs", "export", str(RECORD), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("method", ["rising", "ipr"])
def test_datasets_reads_pairs_jsonl_as_written(method):
    from datasets import load_dataset

    path = RECORD / method / "iter1" / "explore" / "pairs.jsonl"
    loaded = load_dataset("json", data_files=str(path), split="train")
    assert loaded.to_list() == _records(method)
    assert loaded.features["prompt"].feature["role"].dtype == "string"  # a list of messages, not a string


def test_the_export_round_trips_through_save_to_disk_and_parquet(export):
    from datasets import load_dataset, load_from_disk

    from_disk = load_from_disk(str(export / "arrow"))["train"]
    through_card = load_dataset(str(export), split="train")  # the card's YAML names the Parquet file
    parquet = load_dataset("parquet", data_files=str(export / "data" / "*.parquet"), split="train")
    assert from_disk.to_list() == through_card.to_list() == parquet.to_list()

    rows = from_disk.to_list()
    assert len(rows) == sum(len(_records(method)) == 0 or len(_records(method)) for method in METHODS) == 802
    for method in METHODS:
        mine = [row for row in rows if row["method"] == method]
        source = _records(method)
        assert len(mine) == len(source)
        for row, record in zip(mine, source):
            assert row["model"] == "runs/compare-large/sft"
            for key, value in record.items():
                assert row[key] == (str(value) if key == "task_id" else value), (method, key)
            assert row["anchor"] == record.get("anchor")  # ipr pairs have none: null


def test_the_card_says_what_produced_the_pairs(export):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(export / "README.md")
    assert card.data.license == "cc-by-sa-4.0"  # Spider's, which InterCode-SQL's tasks quote
    assert card.data.configs[0]["data_files"][0]["path"] == "data/train-00000-of-00001.parquet"
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in card.text.splitlines() if line.startswith("| ") and not line.startswith("| method")}
    assert set(rows) == set(METHODS)
    for method in METHODS:
        stats = json.loads((RECORD / method / "iter1" / "explore" / "stats.json").read_text())
        env, model, strategy, anchor, n, k, ceiling, split, tasks, pairs, _cps = rows[method]
        assert (env, model, n, k, split) == ("intercode-sql", "`runs/compare-large/sft`", "2", "3", "train (200)")
        assert strategy.startswith(stats["strategy"]) and int(tasks) == stats["tasks"] and int(pairs) == stats["pairs"]
    assert rows["rising-expert"][3] == "expert" and rows["rising"][3] == "policy"
    assert "InterCode-SQL (MIT licence)" in card.text and "CC BY-SA 4.0" in card.text


def test_one_exploration_and_what_is_refused(tmp_path):
    from datasets import load_from_disk

    folder = RECORD / "rising" / "iter1" / "explore"
    out = tmp_path / "one"
    assert runner.invoke(app, ["pairs", "export", str(folder), "-o", str(out)]).exit_code == 0
    rows = load_from_disk(str(out / "arrow"))["train"].to_list()
    assert {row["method"] for row in rows} == {"rising/iter1"} and len(rows) == 117

    again = runner.invoke(app, ["pairs", "export", str(folder), "-o", str(out)])
    assert again.exit_code == 1 and "is not empty" in _said(again)
    assert len(load_from_disk(str(out / "arrow"))["train"]) == 117  # nothing lost

    # Another export fills the folder while this one writes: this one stops, the other's stays whole.
    import rro.pairs_dataset as pairs_dataset

    raced, card = tmp_path / "raced", pairs_dataset.dataset_card

    def the_other_export_finishes_first(*args):
        pairs_dataset.dataset_card = card  # the other export writes its card as usual
        assert runner.invoke(app, ["pairs", "export", str(folder), "-o", str(raced)]).exit_code == 0
        return card(*args)

    pairs_dataset.dataset_card = the_other_export_finishes_first
    try:
        second = runner.invoke(app, ["pairs", "export", str(RECORD / "fixed" / "iter1" / "explore"), "-o", str(raced)])
    finally:
        pairs_dataset.dataset_card = card
    assert second.exit_code == 1 and "was filled by another export meanwhile" in _said(second)
    assert {row["method"] for row in load_from_disk(str(raced / "arrow"))["train"].to_list()} == {"rising/iter1"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one", "raced"]  # no partial folder left

    nothing = runner.invoke(app, ["pairs", "export", str(tmp_path), "-o", str(tmp_path / "x")])
    assert nothing.exit_code == 1 and "is neither an exploration folder" in _said(nothing)
    assert not (tmp_path / "x").exists()


def test_an_export_deletes_what_a_killed_export_left_and_nothing_else(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    killed = tmp_path / f".pairs.partial-{here}-{int(ended.stdout)}-abc123xy"  # its process no longer runs
    running = tmp_path / f".pairs.partial-{here}-{os.getpid()}-abc123xy"
    elsewhere = tmp_path / f".pairs.partial-another-host-{int(ended.stdout)}-abc123xy"
    for folder in (killed, running, elsewhere):
        (folder / "data").mkdir(parents=True)
    out = tmp_path / "pairs"
    assert runner.invoke(app, ["pairs", "export", str(RECORD / "rising" / "iter1" / "explore"), "-o", str(out)]).exit_code == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["pairs", running.name, elsewhere.name])


def test_a_push_to_an_unreachable_hub_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    out = tmp_path / "pushed"
    result = runner.invoke(app, ["pairs", "export", str(RECORD / "ipr" / "iter1" / "explore"), "-o", str(out),
                                 "--push-to-hub", "someone/rro-pairs"])
    assert result.exit_code == 1
    message = _said(result)
    assert "could not push to the Hugging Face Hub (http://127.0.0.1:9, dataset someone/rro-pairs)" in message
    assert f"The export is saved in {out}" in message
    assert (out / "data" / "train-00000-of-00001.parquet").is_file()


def test_trl_trains_one_dpo_step_on_the_export_in_a_plain_script(export, tmp_path, rro_home):
    from rro.policy.models import fetch_model

    model = fetch_model("tiny-random")  # SmolLM2's tokenizer and chat template, two tiny layers
    script = REPO / "examples" / "dpo_on_exported_pairs.py"
    assert "rro" not in {line.split()[1].split(".")[0] for line in script.read_text().splitlines()
                         if line.startswith(("import ", "from "))}
    done = subprocess.run([sys.executable, str(script), str(export), "--model", str(model), "-o", str(tmp_path / "dpo"),
                           "--max-steps", "1", "--limit", "4"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained 1 step(s) on 4 pairs" in done.stdout
    assert (tmp_path / "dpo" / "config.json").is_file()
