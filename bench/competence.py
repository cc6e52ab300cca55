"""Cost against competence: explore the same tasks from checkpoints of increasing competence (e.g.
the base model, SFT after 1, 2 and 4 epochs), with rising and fixed under both anchors, and plot
candidates per step and rollouts per pair against each checkpoint's mean V(s0) on those tasks.

Each (checkpoint, strategy, anchor) is one `rro explore` run in its own folder under OUT (resumable;
a finished one is read, not run again). Writes OUT/competence.png and OUT/competence.json
(`rro.report.write_competence_plot`) and prints the points.

    python bench/competence.py --models smollm2-135m runs/sft-1ep runs/sft-2ep --tasks 16 \\
        [--rollouts 3] [--k 5] [--anchor policy expert] [--strategies rising fixed] [--rise-at-max] \\
        [--hardness easy] [-o runs/competence]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rro.config import ExploreConfig
from rro.explore import explore
from rro.report import competence_table, write_competence_plot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="named models or checkpoints, weakest first")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--hardness", nargs="*", default=[])
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--strategies", nargs="+", choices=["rising", "fixed"], default=["rising", "fixed"])
    parser.add_argument("--anchor", nargs="+", choices=["policy", "expert"], default=["policy", "expert"])
    parser.add_argument("--rise-at-max", action="store_true", help="the ceiling rule for every run")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/competence"))
    args = parser.parse_args()

    folders = []
    for model in args.models:
        policy = None  # loaded once per checkpoint, only if some run of it is unfinished
        for strategy in args.strategies:
            for anchor in args.anchor:
                folder = args.output / re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/")) / f"{strategy}-{anchor}"
                config = ExploreConfig(model=model, split="train", limit=args.tasks, hardness=args.hardness,
                                       strategy=strategy, anchor=anchor, rise_at_max=args.rise_at_max,
                                       prev0="value", rollouts=args.rollouts, max_candidates=args.k,
                                       max_steps=args.max_steps, max_new_tokens=args.max_new_tokens, dtype=args.dtype,
                                       output=folder)
                if not (folder / "stats.json").exists():
                    print(f"{model}: {strategy}, {anchor} anchor", flush=True)
                    policy = policy or config.load_policy()
                explore(config, policy=policy)  # a finished run is a no-op
                folders.append(folder)
    print(competence_table(write_competence_plot(folders, args.output)))
    print(f"\n{args.output / 'competence.png'}, {args.output / 'competence.json'}")


if __name__ == "__main__":
    main()
