"""`rro report` writes index.html: one self-contained page, checked in a real browser (headless Chromium)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from rro.report import write_report


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("RRO_REQUIRE_CHROMIUM") == "1":
        pytest.fail("RRO_REQUIRE_CHROMIUM=1 but Chromium is not installed (apt-get install -y chromium)")
    pytest.skip("Chromium is not installed (apt-get install -y chromium): the page is not checked in a browser")


def _browser(chromium: str, profile, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=True)


def test_report_page_is_self_contained(cli_run, tmp_path):
    run, status, _ = cli_run
    assert status == 0
    write_report([run], tmp_path, resamples=100)
    page = (tmp_path / "index.html").read_text()
    # Nothing is fetched: no external script, stylesheet, font or image.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("data:image/png;base64,") == len(list(tmp_path.glob("*.png"))) >= 3
    # The walks: an index of every task, and each walk's data in its own element (parsed when opened).
    def embedded(element_id: str):
        return json.loads(re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S).group(1))

    index = embedded("walk-index")
    assert [e["strategy"] for e in index] == ["rising", "ipr"] and [len(e["tasks"]) for e in index] == [2, 2]
    rising_step = embedded("w0-0")["steps"][0]
    assert len(rising_step["candidate_turns"]) == len(rising_step["q_values"]) == rising_step["candidates"]
    ipr_walk = embedded("w1-0")
    assert ipr_walk["pairs"] and all("rejected_k" in pair and "chosen" in pair for pair in ipr_walk["pairs"])


def test_report_page_renders_in_chromium(cli_run, tmp_path):
    chromium = _chromium()
    run, status, _ = cli_run
    assert status == 0
    write_report([run], tmp_path, resamples=100)
    url = (tmp_path / "index.html").as_uri()
    dom = _browser(chromium, tmp_path / "profile", "--dump-dom", url).stdout
    screenshot = tmp_path / "screenshot.png"
    _browser(chromium, tmp_path / "profile", "--hide-scrollbars", "--window-size=1300,2400",
             f"--screenshot={screenshot}", url)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000

    # The results table, with a row per method.
    table = re.search(r'<table id="results-table">.*?</table>', dom, re.S).group(0)
    assert all(f"<td>{method}</td>" in table for method in ("sft", "rising", "ipr"))
    assert '<table id="paired-table">' in dom
    # Cost at matched tokens and where the candidates went: rows for the explorations that ran a rule.
    steps = re.search(r'<table id="steps-table">.*?</table>', dom, re.S).group(0)
    assert "<td>rising</td>" in steps and "<td>ipr</td>" not in steps
    assert "<td>ipr</td>" in re.search(r'<table id="cost-table">.*?</table>', dom, re.S).group(0)
    # A plot, embedded.
    assert re.search(r'<img alt="candidates_per_step" src="data:image/png;base64,[A-Za-z0-9+/]{1000}', dom)
    # The first walk, rendered by the page's script: its first step's candidates in the order drawn.
    first = json.loads((run / "rising" / "iter1" / "explore" / "walks.jsonl").read_text().splitlines()[0])
    step = first["steps"][0]
    rendered = re.findall(r'<tr class="candidate[^"]*">(.*?)</tr>', dom, re.S)
    assert len(rendered) >= step["candidates"]
    for row, q, turn in zip(rendered, step["q_values"], step["candidate_turns"]):
        assert f"<td>{q:.3f}</td>" in row
        assert html.escape(turn, quote=False).replace("\r", "") in row.replace("\r", "")
    assert f"Task {first['task_id']}" in dom and "page 1 of 1 (2 tasks)" in dom


def test_the_page_shows_a_rise_at_the_ceiling_as_rising(tmp_path):
    """A step whose candidate reached the maximum reward rose under the ceiling rule (rise_at_max),
    though its previous value was already the maximum: the page takes the bar and the verdict from
    the record, so it shows the candidate as rising and the bar as the rule held it. The walk is
    recorded as rro wrote it before records carried the bar (version 1): the reader derives it."""
    from rro.report_page import write_page

    chromium = _chromium()
    folder = tmp_path / "run" / "rising" / "iter1" / "explore"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"env": "intercode-sql", "strategy": "rising", "margin": 0.0,
                                                    "rise_at_max": True, "on_no_rise": "continue"}))
    step = {"task_id": "3", "step": 0, "candidates": 1, "distinct_actions": 1, "rose": True, "prev_value": 1.0,
            "q_values": [1.0], "chosen_q": 1.0, "candidate_turns": ["Thought: t\nAction: submit"],
            "candidate_actions": ["submit"], "candidate_generated_tokens": 5, "candidate_prompt_tokens": 50,
            "rollouts": 1, "env_steps": 1, "rollout_generated_tokens": 0, "rollout_prompt_tokens": 0, "cache_hits": 0,
            "exact": 1}
    walk = {"task_id": "3", "strategy": "rising", "end": "submitted", "reward": 1.0, "values": [1.0, 1.0],
            "turns": ["Thought: t\nAction: submit"], "observations": ["done"], "steps": [step], "pairs": []}
    (folder / "walks.jsonl").write_text(json.dumps(walk) + "\n")
    out = tmp_path / "report"
    out.mkdir()
    write_page(out, [("run", {"methods": [{"method": "rising", "explore": [str(folder)]}]})], {})
    dom = _browser(chromium, tmp_path / "profile", "--dump-dom", (out / "index.html").as_uri()).stdout
    (row,) = re.findall(r'<tr class="candidate[^"]*">', dom)
    assert row.split('"')[1].split() == ["candidate", "chosen", "rose"]
    assert "a candidate rose" in dom and "rose: chosen" in dom
    assert "bar: 1.000 (previous value 1.000, held below the maximum reward)" in dom


def test_odd_values_names_and_addresses(cli_run, tmp_path):
    """A NaN or infinite value renders as such, an address the page never wrote opens the first
    walk, and a `|` in a method name stays in its Markdown cell."""
    from typer.testing import CliRunner

    from rro.cli import app

    chromium = _chromium()
    run, status, _ = cli_run
    assert status == 0
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    results = json.loads((copy / "results.json").read_text())
    assert results["methods"][1]["method"] == "rising"
    results["methods"][1]["method"] = "rising|v2"
    (copy / "results.json").write_text(json.dumps(results))
    walks_file = copy / "rising" / "iter1" / "explore" / "walks.jsonl"
    walks = [json.loads(line) for line in walks_file.read_text().splitlines()]
    walks[0]["steps"][0]["q_values"][0] = float("nan")
    walks[0]["values"][0] = float("inf")
    walks_file.write_text("".join(json.dumps(walk) + "\n" for walk in walks))  # NaN and Infinity, as Python writes them

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(copy), "-o", str(out), "--resamples", "100"])
    assert result.exit_code == 0, result.output
    for name in ("results.md", "cost.md"):  # every table that names methods
        table = [line for line in (out / name).read_text().splitlines() if line.startswith("|")]
        assert all(len(re.split(r"(?<!\\)\|", line)) == len(re.split(r"\|", table[0])) for line in table), name
        assert any(line.startswith("| run | rising\\|v2 |") for line in table), name

    dom = _browser(chromium, tmp_path / "profile", "--dump-dom", (out / "index.html").as_uri() + "#e=-1").stdout
    assert "<td>rising|v2</td>" in dom
    assert f"Task {walks[0]['task_id']}" in dom  # the first exploration's first walk, although e=-1
    rows = re.findall(r'<tr class="candidate[^"]*">(.*?)</tr>', dom, re.S)
    assert "<td>NaN</td>" in rows[0]
    assert "Start value V(s0) Infinity" in dom
