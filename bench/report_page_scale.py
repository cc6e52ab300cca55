"""Is the report page fast for thousands of tasks? Writes index.html for synthetic explorations of
100 and of N tasks (default 5000; 5 steps of 3 candidates each, SQL-sized turns and observations)
and prints, side by side: the page's size, the time to write it, and the time headless Chromium
takes to load it, run its script (the task list and the first walk) and paint it, with the ratio
large/small and, for scale, Chromium's time on an empty page.

    python bench/report_page_scale.py [--tasks 5000] [-o runs/bench-report-page]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

from rro.report_page import write_page

TURN = "Thought: I look for the singers older than the average.\nAction: SELECT name FROM singer WHERE age > {n}"
OBSERVATION = "[('Joe Sharp',), ('Timbaland',), ('Justin Brown',), ('Rose White',)] " * 3


def synthetic_run(folder: Path, tasks: int, seed: int = 0) -> Path:
    """A run directory with one `rising` exploration of `tasks` walks."""
    rng = random.Random(seed)
    explore = folder / "rising" / "iter1" / "explore"
    explore.mkdir(parents=True, exist_ok=True)
    (explore / "config.json").write_text(json.dumps({"strategy": "rising", "margin": 0.0}))
    with open(explore / "walks.jsonl", "w") as handle:
        for task in range(tasks):
            prev, steps, pairs = 0.0, [], []
            for step in range(5):
                q_values = [round(rng.random(), 2) for _ in range(3)]
                turns = [TURN.format(n=rng.randint(18, 60)) for _ in q_values]
                steps.append({"step": step, "candidates": 3, "q_values": q_values, "prev_value": prev,
                              "rose": max(q_values) > prev, "chosen_q": max(q_values), "rollouts": 15,
                              "cache_hits": 0, "rollouts_saved": 0, "exact": 0, "candidate_turns": turns,
                              "candidate_actions": [t.split("Action: ")[1] for t in turns]})
                best = q_values.index(max(q_values))
                pairs += [{"step": step, "q_chosen": q_values[best], "q_rejected": q,
                           "chosen": [{"role": "assistant", "content": turns[best]}],
                           "rejected": [{"role": "assistant", "content": turns[k]}]}
                          for k, q in enumerate(q_values) if q < q_values[best]]
                prev = max(q_values)
            handle.write(json.dumps({"task_id": str(task), "end": "submitted", "reward": prev, "values": [0.0],
                                     "instruction": "How many singers are older than the average?",
                                     "turns": [s["candidate_turns"][0] for s in steps],
                                     "observations": [OBSERVATION] * 5, "steps": steps, "pairs": pairs}) + "\n")
    (folder / "results.json").write_text(json.dumps({"methods": [{"method": "rising", "explore": [str(explore)]}]}))
    return folder


def chromium_seconds(chromium: str, out: Path, page: Path) -> float:
    """Seconds for headless Chromium to load `page`, run its script and paint it (a screenshot).
    (`--dump-dom` would also time writing the whole DOM back, embedded data included.)"""
    started = time.perf_counter()
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={out / 'profile'}",
                    "--window-size=1300,1000", f"--screenshot={page.with_suffix('.png')}", page.as_uri()],
                   capture_output=True, timeout=600, check=True)
    return time.perf_counter() - started


def measure(out: Path, tasks: int, chromium: str | None) -> dict[str, float]:
    run = synthetic_run(out / f"run-{tasks}", tasks)
    results = json.loads((run / "results.json").read_text())
    started = time.perf_counter()
    page = write_page(run, [(run.name, results)], {})
    written = time.perf_counter() - started
    figures = {"tasks": tasks, "MB": page.stat().st_size / 1e6, "write_s": written}
    if chromium:
        figures["chromium_s"] = chromium_seconds(chromium, out, page)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/bench-report-page"))
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("Chromium is not installed: only the page's size and write time are measured")
    if chromium:  # Chromium's own start-up, to read the figures below against
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "empty.html").write_text("<!DOCTYPE html><p>empty</p>")
        print(f"Chromium on an empty page: {chromium_seconds(chromium, args.output, args.output / 'empty.html'):.2f} s")
    small, large = measure(args.output, 100, chromium), measure(args.output, args.tasks, chromium)
    print(f"{'':>22}{'100 tasks':>12}{f'{args.tasks} tasks':>14}{'ratio':>8}")
    for key, label in (("MB", "page size (MB)"), ("write_s", "write (s)"), ("chromium_s", "load + paint (s)")):
        if key in small:
            print(f"{label:>22}{small[key]:>12.2f}{large[key]:>14.2f}{large[key] / small[key]:>8.1f}")


if __name__ == "__main__":
    main()
