"""Cost against competence: explore the same tasks from checkpoints of increasing competence (e.g.
the base model, SFT after 1, 2 and 4 epochs), with rising and fixed under both anchors, and plot
candidates per step and rollouts per pair against each checkpoint's mean V(s0) on those tasks.

Each (checkpoint, strategy, anchor) is one `rro explore` run in its own folder under OUT (resumable;
a finished one is read, not run again). With `--replay` the expert anchor costs one run per
checkpoint: a fixed, expert-anchored recording (OUT/<model>/recording-fixed-expert) from which both
strategies' points are replayed (rro.explore.replay), on the same candidates and rollouts. Writes OUT/competence.png and OUT/competence.json
(`rro.report.write_competence_plot`) and prints the points. `--family NAME` labels this sweep's points
and `--plot-with FILE` plots another sweep's competence.json beside them (its own marker, not joined).

    python bench/competence.py --models smollm2-135m runs/sft-1ep runs/sft-2ep --tasks 16 \\
        [--rollouts 3] [--k 5] [--anchor policy expert] [--strategies rising fixed] [--rise-at-max] \\
        [--hardness easy] [--replay] [--policy-backend hf|vllm] [--family NAME] [--plot-with FILE] \\
        [-o runs/competence]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from rro.config import ExploreConfig
from rro.envs.base import spec
from rro.explore import explore
from rro.explore.replay import ReplaySettings, competence_point
from rro.policy import release_engines
from rro.report import competence_points, competence_table, plot_competence
from rro.terminal import quiet_libraries


def reusable_recording(folder: Path, config: ExploreConfig) -> bool:
    """A finished recording of the same model, tasks and episode limits, with at least K and N."""
    if not (folder / "stats.json").exists():
        return False
    saved = json.loads((folder / "config.json").read_text())
    same = ("model", "env", "split", "limit", "hardness", "max_steps", "max_new_tokens", "seed", "temperature",
            "rollout_temperature", "anchor", "strategy", "prev0", "adaptive")
    wanted = config.model_dump(mode="json")
    return all(saved.get(key) == wanted[key] for key in same) and \
        saved["max_candidates"] >= config.max_candidates and saved["rollouts"] >= config.rollouts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="named models or checkpoints, weakest first")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--hardness", nargs="*", default=[])
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--tasks-per-batch", type=int, default=8,
                        help="tasks explored together: a smaller chunk keeps more of an interrupted run")
    parser.add_argument("--strategies", nargs="+", choices=["rising", "fixed"], default=["rising", "fixed"])
    parser.add_argument("--anchor", nargs="+", choices=["policy", "expert"], default=["policy", "expert"])
    parser.add_argument("--rise-at-max", action="store_true", help="the ceiling rule for every run")
    parser.add_argument("--replay", action="store_true", help="replay the expert anchor's points from one recording per checkpoint")
    parser.add_argument("--policy-backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-model-len", type=int, default=None,
                        help="vllm: the longest prompt + completion (a 32k-context model reserves KV cache for it)")
    parser.add_argument("--family", default=None, help="label of these checkpoints' points, e.g. the model family")
    parser.add_argument("--plot-with", nargs="*", type=Path, default=[],
                        help="competence.json of other sweeps (made with their own --family), plotted with these")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/competence"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    points = []
    for model in args.models:
        policy = None  # loaded once per checkpoint, only if some run of it is unfinished
        runs = [(strategy, anchor) for strategy in args.strategies for anchor in args.anchor]
        if args.replay and "expert" in args.anchor:
            runs = [("fixed", "recording")] + [(strategy, anchor) for strategy, anchor in runs if anchor != "expert"]
        for strategy, anchor in runs:
            folder = args.output / re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/")) / \
                ("recording-fixed-expert" if anchor == "recording" else f"{strategy}-{anchor}")
            config = ExploreConfig(model=model, split="train", limit=args.tasks, hardness=args.hardness,
                                   strategy=strategy, anchor="expert" if anchor == "recording" else anchor,
                                   rise_at_max=args.rise_at_max, prev0="value", rollouts=args.rollouts,
                                   max_candidates=args.k, max_steps=args.max_steps, max_new_tokens=args.max_new_tokens,
                                   dtype=args.dtype, policy_backend=args.policy_backend, max_model_len=args.max_model_len,
                                   tasks_per_batch=args.tasks_per_batch, output=folder)
            # A recording with a larger K and N (e.g. the ablation's, copied here) replays as well.
            if not (anchor == "recording" and reusable_recording(folder, config)):
                if not (folder / "stats.json").exists():
                    print(f"{model}: {strategy}, {anchor} anchor", flush=True)
                    policy = policy or config.load_policy()
                explore(config, policy=policy)  # a finished run is a no-op
            if anchor == "recording":
                points += [competence_point(folder, ReplaySettings(strategy, args.k, args.rollouts,
                                                                   rise_at_max=args.rise_at_max),
                                            spec(config.env).reward_range)
                           for strategy in args.strategies]
            else:
                points += competence_points([folder])
        release_engines()  # one vLLM engine at a time
    if args.family:
        points = [{**point, "family": args.family} for point in points]
    for earlier in args.plot_with:
        points += json.loads(earlier.read_text())
    print(competence_table(plot_competence(points, args.output)))
    print(f"\n{args.output / 'competence.png'}, {args.output / 'competence.json'}")


if __name__ == "__main__":
    main()
