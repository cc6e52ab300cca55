"""Ablations of reward-rising exploration: one model, one task set, a grid of settings.

Every cell of the grid is one `rro explore` run on the same tasks with the same seeds, in its own
folder (`OUT/<cell>/`), so an interrupted grid resumes where it stopped and a finished cell is not
run again. Axes (each overridable; the defaults are the grid the paper's reviewers asked for):

    rise_at_max   off, on           the ceiling rule
    anchor        policy, expert    which states are explored
    margin        0, 0.05           rising means q > prev + margin
    prev0         value, zero       the first bar
    N             3, 5              rollouts per Q estimate
    K_max         3, 5, 8           candidates per step at most
    on_no_rise    continue, stop

`--design grid` runs every combination; `--design one-at-a-time` runs the base cell (the first
value of every axis) and, for each axis, its other values with every other axis at the base.

With `--replay`, the expert-anchored cells are not explored one by one: one fixed, expert-anchored
exploration with the largest K and N of the grid and prev0 = value (`OUT/recording-...`) records
every candidate's rollout rewards, and each expert-anchored cell, rising or fixed, is replayed from
it (rro.explore.replay: the same decisions, pairs and rollout counts a run of the cell would give on
a per-request-seeded backend; tested against real runs). The cells then differ only by their
settings, not by what they happened to sample. Policy-anchored cells are always explored.

With `--fixed`, fixed-size exploration (best of K, never stopping early) also runs once per
(anchor, N, K), and each rising cell is compared with the fixed cell of its anchor, N and K. Fixed
cells start from prev0 = "zero" and their rollouts leave out the expert anchor's bars: fixed needs
neither, so its cost is what it samples and values.
Prints one table (candidates per step, rollouts per pair, pairs, rising rate, ...) and writes every
cell's figures to `OUT/ablations.json`.

    python bench/explore_ablations.py --model runs/quickstart/sft --tasks 8 --hardness easy \\
        [--rollouts 3 5] [--k 3 5 8] [--margin 0 0.05] [--prev0 value zero] [--anchor policy expert] \\
        [--rise-at-max off on] [--on-no-rise continue stop] [--fixed] [--design grid|one-at-a-time]
        [--replay] [--policy-backend hf|vllm] [-o runs/ablations]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from rro.jsonl import read_jsonl
from rro.config import ExploreConfig
from rro.envs.base import spec
from rro.explore import explore
from rro.explore.replay import ReplaySettings, check_recording, read_recording, replay, summarize
from rro.terminal import quiet_libraries

AXES = ("rise_at_max", "anchor", "margin", "prev0", "rollouts", "max_candidates", "on_no_rise")


def cell_name(strategy: str, cell: dict) -> str:
    """A folder name that says the cell's settings, e.g. rising-policy-ceil-m0.05-value-N3-K5-continue."""
    return (f"{strategy}-{cell['anchor']}-{'ceil' if cell['rise_at_max'] else 'strict'}-m{cell['margin']:g}-"
            f"{cell['prev0']}-N{cell['rollouts']}-K{cell['max_candidates']}-{cell['on_no_rise']}")


def figures(folder: Path, strategy: str, k: int) -> dict:
    """What the table shows of one cell (explored with K_max = k). `fixed` never uses the expert
    anchor's bars (they only label its `rose` flag), so its own cost leaves their rollouts out."""
    stats = json.loads((folder / "stats.json").read_text())
    histogram = stats["candidates_per_step"]["histogram"]
    bar_rollouts = sum(step.get("bar_rollouts", 0) for step in read_jsonl(folder / "steps.jsonl"))
    rollouts = stats["rollouts"] - (bar_rollouts if strategy == "fixed" else 0)
    return {
        "tasks": stats["tasks"],
        "steps": stats["steps"],
        "candidates_per_step": stats["candidates_per_step"]["mean"],
        "share_of_steps_at_k": histogram.get(str(k), 0) / stats["steps"] if stats["steps"] else None,
        "histogram": stats["candidates_per_step"]["histogram"],
        "pairs": stats["pairs"],
        "rollouts": rollouts,
        "bar_rollouts": bar_rollouts,
        "rollouts_per_pair": rollouts / stats["pairs"] if stats["pairs"] else None,
        "rising_rate": stats["rising_rate"],
        "generated_tokens": stats["generated_tokens"],
        "mean_final_reward": stats["mean_final_reward"],
        "wall_seconds": stats["wall_seconds"],
    }


def finished(config: ExploreConfig) -> bool:
    """stats.json is written when a run ends: a run that has it for all its tasks is finished."""
    stats_file = config.output / "stats.json"
    return stats_file.exists() and json.loads(stats_file.read_text())["tasks"] == len(config.tasks())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", type=int, default=8, help="the first TASKS train tasks (after --hardness)")
    parser.add_argument("--hardness", nargs="*", default=[])
    parser.add_argument("--env", default="intercode-sql")
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--tasks-per-batch", type=int, default=8)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rise-at-max", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--anchor", nargs="+", choices=["policy", "expert"], default=["policy", "expert"])
    parser.add_argument("--margin", nargs="+", type=float, default=[0.0, 0.05])
    parser.add_argument("--prev0", nargs="+", choices=["value", "zero"], default=["value", "zero"])
    parser.add_argument("--rollouts", nargs="+", type=int, default=[3, 5], help="N")
    parser.add_argument("--k", nargs="+", type=int, default=[3, 5, 8], help="K_max")
    parser.add_argument("--on-no-rise", nargs="+", choices=["continue", "stop"], default=["continue", "stop"])
    parser.add_argument("--fixed", action="store_true", help="also run fixed (best of K) per anchor, N and K")
    parser.add_argument("--design", choices=["grid", "one-at-a-time"], default="grid")
    parser.add_argument("--replay", action="store_true",
                        help="replay the expert-anchored cells from one recording (largest K and N) instead of exploring each")
    parser.add_argument("--policy-backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/ablations"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    common = dict(env=args.env, model=args.model, split="train", limit=args.tasks, hardness=args.hardness,
                  max_steps=args.max_steps, max_new_tokens=args.max_new_tokens, tasks_per_batch=args.tasks_per_batch,
                  dtype=args.dtype, seed=args.seed, policy_backend=args.policy_backend)
    if args.env != "intercode-sql":
        common.pop("hardness")
    axes = [[v == "on" for v in args.rise_at_max], args.anchor, args.margin, args.prev0, args.rollouts, args.k,
            args.on_no_rise]
    if args.design == "grid":
        rows = list(itertools.product(*axes))
    else:  # the base cell, then each axis's other values alone
        base = [values[0] for values in axes]
        rows = [base] + [base[:i] + [value] + base[i + 1:] for i, values in enumerate(axes) for value in values[1:]]
    grid = [dict(zip(AXES, values)) for values in rows]
    runs = [("rising", cell) for cell in grid]
    if args.fixed:  # fixed ignores margin and on_no_rise (it never stops); its first bar only labels `rose`
        anchor_n_k = dict.fromkeys((c["anchor"], c["rollouts"], c["max_candidates"]) for c in grid)
        fixed = [("fixed", dict(rise_at_max=False, anchor=anchor, margin=0.0, prev0="zero", rollouts=n,
                                max_candidates=k, on_no_rise="continue"))
                 for anchor, n, k in anchor_n_k]
        runs = runs[:1] + fixed[:1] + runs[1:] + fixed[1:]  # the base cell's baseline early: the first ratio

    policy = None
    recording = None
    if args.replay and any(cell["anchor"] == "expert" for _, cell in runs):
        k, n = max(c["max_candidates"] for _, c in runs), max(c["rollouts"] for _, c in runs)
        config = ExploreConfig(strategy="fixed", anchor="expert", prev0="value", rollouts=n, max_candidates=k,
                               output=args.output / f"recording-fixed-expert-value-N{n}-K{k}", **common)
        if not finished(config):
            print(f"[recording] {config.output.name}", flush=True)
            policy = config.load_policy()
            explore(config, policy=policy)
        recording = read_recording(config.output)

    results = []
    for number, (strategy, cell) in enumerate(runs, 1):
        name = cell_name(strategy, cell)
        if recording and cell["anchor"] == "expert":
            settings = ReplaySettings(strategy, cell["max_candidates"], cell["rollouts"], cell["margin"], cell["rise_at_max"],
                                      cell["prev0"], cell["on_no_rise"])
            check_recording(*recording, settings)
            figures_of_cell = summarize(replay(recording[1], settings, spec(args.env).reward_range), cell["max_candidates"])
            if strategy == "fixed":  # as explored: fixed's own cost leaves the bars out
                figures_of_cell["rollouts"] -= figures_of_cell["bar_rollouts"]
                pairs = figures_of_cell["pairs"]
                figures_of_cell["rollouts_per_pair"] = figures_of_cell["rollouts"] / pairs if pairs else None
            results.append({"cell": name, "strategy": strategy, "setting": cell, "replayed": True,
                            "generated_tokens": None, "mean_final_reward": None, "wall_seconds": None,
                            **figures_of_cell})
            continue
        config = ExploreConfig(strategy=strategy, output=args.output / name, **common, **cell)
        if not finished(config):
            print(f"[{number}/{len(runs)}] {name}", flush=True)
            policy = policy or config.load_policy()  # one model for every cell
            explore(config, policy=policy)
        results.append({"cell": name, "strategy": strategy, "setting": cell, "replayed": False,
                        **figures(config.output, strategy, cell["max_candidates"])})

    def anchor_n_k(result):
        return tuple(result["setting"][key] for key in ("anchor", "rollouts", "max_candidates"))

    fixed = {anchor_n_k(r): r for r in results if r["strategy"] == "fixed"}
    for r in results:
        baseline = fixed.get(anchor_n_k(r))
        r["candidates_vs_fixed"] = (r["candidates_per_step"] / baseline["candidates_per_step"]
                                    if baseline and r["strategy"] == "rising" else None)
        r["rollouts_per_pair_vs_fixed"] = (r["rollouts_per_pair"] / baseline["rollouts_per_pair"]
                                           if baseline and r["strategy"] == "rising" and r["rollouts_per_pair"]
                                           and baseline["rollouts_per_pair"] else None)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "ablations.json").write_text(json.dumps({"setting": common, "cells": results}, indent=2))

    show = lambda value, digits=2: "–" if value is None else f"{value:.{digits}f}"  # noqa: E731
    print(f"\nmodel {args.model}, {args.tasks} train tasks {' '.join(args.hardness)}, env {args.env}, "
          f"max_steps {args.max_steps}, seed {args.seed}")
    print("| strategy | replayed | anchor | ceiling | margin | prev0 | N | K | on_no_rise | steps | cand/step | x fixed "
          "| at K | pairs | rollouts | of them bars | rollouts/pair | x fixed | rising rate | final reward |")
    print("|" + "---|" * 20)
    for r in results:
        c = r["setting"]
        print(f"| {r['strategy']} | {'yes' if r['replayed'] else 'no'} | {c['anchor']} | {'on' if c['rise_at_max'] else 'off'} | {c['margin']:g} "
              f"| {c['prev0']} | {c['rollouts']} | {c['max_candidates']} | {c['on_no_rise']} | {r['steps']} "
              f"| {show(r['candidates_per_step'])} | {show(r['candidates_vs_fixed'])} | {show(r['share_of_steps_at_k'])} "
              f"| {r['pairs']} | {r['rollouts']} | {r['bar_rollouts'] if r['strategy'] == 'rising' else '(left out)'} "
              f"| {show(r['rollouts_per_pair'], 1)} "
              f"| {show(r['rollouts_per_pair_vs_fixed'])} | {show(r['rising_rate'])} | {show(r['mean_final_reward'])} |")
    if recording:
        print_by_bar(recording[1], grid[0], args)
    print(f"\nevery cell's figures: {args.output / 'ablations.json'}")


def print_by_bar(steps: list[dict], base: dict, args) -> None:
    """Where the saving comes from: the base cell's expert-anchored steps grouped by the bar (the
    policy's own value of the state), replayed with the ceiling rule on and off and as fixed."""
    top = spec(args.env).reward_range[1]
    group = lambda value: "0" if value <= 0 else ("top" if value >= top - 1e-9 else "between")  # noqa: E731
    n, k = base["rollouts"], base["max_candidates"]
    columns = {"rising, ceiling": ReplaySettings("rising", k, n, base["margin"], True, base["prev0"], base["on_no_rise"]),
               "rising, strict": ReplaySettings("rising", k, n, base["margin"], False, base["prev0"], base["on_no_rise"]),
               "fixed": ReplaySettings("fixed", k, n, prev0=base["prev0"])}
    table = {}
    for column, settings in columns.items():
        for record in replay(steps, settings, spec(args.env).reward_range):
            for step in record["steps"]:
                cell = table.setdefault((group(step["prev_value"]), column), {"steps": 0, "candidates": 0, "pairs": 0})
                cell["steps"] += 1
                cell["candidates"] += step["candidates"]
            for pair in record["pairs"]:
                table[(group(pair["prev_value"]), column)]["pairs"] += 1
    print(f"\nexpert anchor, N {n}, K {k}, prev0 {base['prev0']}: candidates per step (pairs) by the bar at the state")
    print("| bar | states | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for bar in ("0", "between", "top"):
        cells = [table.get((bar, column)) for column in columns]
        if cells[-1]:
            print(f"| {bar} | {cells[-1]['steps']} | " + " | ".join(
                f"{c['candidates'] / c['steps']:.2f} ({c['pairs']})" if c else "–" for c in cells) + " |")


if __name__ == "__main__":
    main()
