"""Write the README's headline results table from the committed results files.

The table sits in README.md between `<!-- results table -->` and `<!-- end of the results table -->`,
inside the `results` snippet section that the site's compare-large page includes
(pymdownx.snippets), so both show numbers from one source:
docs/results/compare-large/results.csv and paired.md (written by `rro report`) and the run's
record (each method's anchor). tests/test_readme.py fails when the README is out of date.

    python docs/scripts/readme_results.py          # rewrite the block in README.md
    python docs/scripts/readme_results.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "results" / "compare-large"
README = REPO / "README.md"
START, END = "<!-- results table -->", "<!-- end of the results table -->"


def paired_differences() -> dict[str, tuple[str, str, str]]:
    """method -> (difference ×100 with its 95% interval, tasks better, tasks worse), from paired.md."""
    rows = {}
    for line in (RESULTS / "paired.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 6 and cells[1].endswith(" − sft"):
            difference = cells[3].replace("-", "−")
            rows[cells[1].removesuffix(" − sft")] = (difference, cells[4], cells[5])
    return rows


def table() -> str:
    anchors = {m["method"]: m.get("anchor") for m in json.loads((RESULTS / "record" / "results.json").read_text())["methods"]}
    paired = paired_differences()
    lines = ["| method | anchor | avg reward ×100 (95% CI) | − SFT, paired (95% CI) | better / worse | "
             "cand/step | rollouts | pairs | rollouts/pair |",
             "|---|---|---|---|---|---|---|---|---|"]
    with (RESULTS / "results.csv").open() as file:
        for row in csv.DictReader(file):
            method = row["method"]
            reward = f"{float(row['avg_reward']):.1f} ({float(row['ci_low']):.1f}–{float(row['ci_high']):.1f})"
            if method == "sft":
                lines.append(f"| sft | – | {reward} | | | – | – | – | – |")
                continue
            difference, better, worse = paired[method]
            rollouts, pairs = int(row["rollouts"]), int(row["pairs"])
            name = f"{method} (RRO)" if method.startswith("rising") else method
            anchor = anchors[method] if method != "ipr" else "expert"  # IPR walks the expert's trajectory
            lines.append(f"| {name} | {anchor} | {reward} | {difference} | {better} / {worse} | "
                         f"{float(row['cand_per_step_mean']):.2f} | {rollouts} | {pairs} | {rollouts / pairs:.1f} |")
    return "\n".join(lines)


def updated(readme: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _: f"{START}\n{table()}\n{END}", readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether README.md is up to date")
    args = parser.parse_args()
    current = README.read_text()
    fresh = updated(current)
    if args.check:
        sys.exit(0 if fresh == current else "README.md's results table is out of date: run python docs/scripts/readme_results.py")
    README.write_text(fresh)


if __name__ == "__main__":
    main()
