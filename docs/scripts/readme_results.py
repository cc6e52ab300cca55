"""Write the README's results tables from the committed results files.

Each table sits in README.md between `<!-- NAME -->` and `<!-- end of the NAME -->`:

- `results table`, compare-large's, inside the `results` snippet section that the site's
  compare-large page includes (pymdownx.snippets), so both show numbers from one source;
- `compare-qwen table`, compare-qwen's, with its equal-pairs arm and cost at matched tokens.

They are made from what `rro report` wrote into docs/results/RUN/ (results.csv, paired.md) and the
run's record (each method's anchor). tests/test_readme.py fails when the README is out of date.

    python docs/scripts/readme_results.py          # rewrite the blocks in README.md
    python docs/scripts/readme_results.py --check  # exit 1 if one is out of date
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

from rro.report import read_results

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "results"
README = REPO / "README.md"


def paired_differences(results: Path) -> dict[str, tuple[str, str, str]]:
    """method -> (difference ×100 with its 95% interval, tasks better, tasks worse), from paired.md:
    each method against its SFT evaluation (the equal-pairs arm's against `sft-equal`)."""
    rows = {}
    for line in (results / "paired.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        method, _, baseline = cells[1].partition(" − ") if len(cells) == 6 else ("", "", "")
        if baseline in ("sft", "sft-equal"):
            rows[method] = (cells[3].replace("-", "−"), cells[4], cells[5])
    return rows


def _rows(results: Path) -> list[dict[str, str]]:
    with (results / "results.csv").open() as file:
        return list(csv.DictReader(file))


def _anchors(results: Path) -> dict[str, str]:
    methods = read_results(results / "record")["methods"]
    # IPR walks the expert's trajectory; SFT explores nothing.
    return {m["method"]: "expert" if m.get("strategy") == "ipr" else m.get("anchor") or "–" for m in methods}


def _reward(row: dict[str, str]) -> str:
    return f"{float(row['avg_reward']):.1f} ({float(row['ci_low']):.1f}–{float(row['ci_high']):.1f})"


def _name(method: str) -> str:
    return f"{method} (RRO)" if method.startswith("rising") else method


def compare_large_table() -> str:
    results = RESULTS / "compare-large"
    anchors, paired = _anchors(results), paired_differences(results)
    lines = ["| method | anchor | avg reward ×100 (95% CI) | − SFT, paired (95% CI) | better / worse | "
             "cand/step | rollouts | pairs | rollouts/pair |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in _rows(results):
        method = row["method"]
        if method == "sft":
            lines.append(f"| sft | – | {_reward(row)} | | | – | – | – | – |")
            continue
        difference, better, worse = paired[method]
        rollouts, pairs = int(row["rollouts"]), int(row["pairs"])
        lines.append(f"| {_name(method)} | {anchors[method]} | {_reward(row)} | {difference} | {better} / {worse} | "
                     f"{float(row['cand_per_step_mean']):.2f} | {rollouts} | {pairs} | {rollouts / pairs:.1f} |")
    return "\n".join(lines)


def compare_qwen_table() -> str:
    """One row per method: its DPO on all its pairs, then on the equal count (METHOD-equal), and the
    test reward above SFT per million generated exploration tokens. Methods not finished yet show –."""
    results = RESULTS / "compare-qwen"
    anchors, paired, rows = _anchors(results), paired_differences(results), _rows(results)
    by_method = {row["method"]: row for row in rows}
    sft = float(by_method["sft"]["avg_reward"])
    lines = ["| method | anchor | avg reward ×100 (95% CI) | − SFT, paired (95% CI) | cand/step | rollouts/pair "
             "| pairs | − SFT on equal pairs (95% CI) | − SFT per M tokens |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        method = row["method"]
        if method == "sft":
            arm = by_method.get("sft-equal")  # the equal-pairs arm's own evaluation of its starting model
            arm_cell = f" arm's SFT: {float(arm['avg_reward']):.1f} " if arm else " "
            lines.append(f"| sft | – | {_reward(row)} | | – | – | – |{arm_cell}| |")
            continue
        if method.endswith("-equal"):
            continue  # shown in its method's row
        rollouts, pairs, tokens = int(row["rollouts"]), int(row["pairs"]), int(row["generated_tokens"])
        equal = paired.get(f"{method}-equal")
        equal_cell = f"{equal[0]} on {by_method[method + '-equal']['dpo_pairs']} pairs" if equal else "–"
        per_tokens = f"{(float(row['avg_reward']) - sft) / (tokens / 1e6):+.1f}".replace("-", "−")
        lines.append(f"| {_name(method)} | {anchors[method]} | {_reward(row)} | {paired[method][0]} "
                     f"| {float(row['cand_per_step_mean']):.2f} | {f'{rollouts / pairs:.1f}' if pairs else 'no pair'} "
                     f"| {pairs} | {equal_cell} | {per_tokens} |")
    return "\n".join(lines)


TABLES = {"results table": compare_large_table, "compare-qwen table": compare_qwen_table}


def updated(readme: str) -> str:
    found = False
    for name, make in TABLES.items():
        start, end = f"<!-- {name} -->", f"<!-- end of the {name} -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if pattern.search(readme):
            found = True
            readme = pattern.sub(lambda _: f"{start}\n{make()}\n{end}", readme)
    if not found:
        raise SystemExit(f"README.md has none of the blocks {', '.join(TABLES)}")
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether README.md is up to date")
    args = parser.parse_args()
    current = README.read_text()
    fresh = updated(current)
    if args.check:
        sys.exit(0 if fresh == current else "README.md's results tables are out of date: run python docs/scripts/readme_results.py")
    README.write_text(fresh)


if __name__ == "__main__":
    main()
