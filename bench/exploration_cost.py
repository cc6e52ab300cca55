"""What reward-rising exploration saves: `fixed` (best of K) vs `rising` on the same tasks, model
and seeds. Prints candidates per step (mean and histogram), rollouts and generated tokens per
preference pair and per task for both, and the ratios rising/fixed. The paper's claim, with an
SFT model: about 1.6–1.9 candidates per step for rising vs 3–5 for fixed-size exploration.

With `--adaptive`, rising also runs with the adaptive rollout budget and the rollouts it saved are
printed. Its decisions equal the full budget's when both see the same rollout outcomes (tests check
this with a scripted policy); with a sampling model the adaptive run draws rollouts in a different
order, so its walks are compared here as a second sample, not as a replay.

    python bench/exploration_cost.py [--model PATH_OR_NAME] [--tasks 4] [--rollouts 5] [--k 5] \
        [--max-steps 10] [--max-new-tokens 128] [--adaptive] [-o runs/bench-exploration]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rro.config import ExploreConfig
from rro.explore import explore
from rro.terminal import quiet_libraries


def per(value, count):
    return f"{value / count:.1f}" if count else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--adaptive", action="store_true", help="also run rising with the adaptive budget")
    parser.add_argument("--hardness", nargs="*", default=[], help="only train tasks of these hardness levels")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/bench-exploration"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    common = dict(model=args.model, split="train", limit=args.tasks, rollouts=args.rollouts, max_candidates=args.k,
                  max_steps=args.max_steps, max_new_tokens=args.max_new_tokens, backend=args.backend, seed=0, hardness=args.hardness)
    fixed_config = ExploreConfig(strategy="fixed", output=args.output / "fixed", **common)
    policy = fixed_config.load_policy()  # one model for both runs
    results = {}
    for strategy in ("fixed", "rising"):
        config = ExploreConfig(strategy=strategy, output=args.output / strategy, **common)
        results[strategy] = explore(config, policy=policy)
    if args.adaptive:
        config = ExploreConfig(strategy="rising", adaptive=True, output=args.output / "rising-adaptive", **common)
        adaptive = explore(config, policy=policy)

    print(f"model {args.model}, {args.tasks} train tasks {args.hardness or ''}, N={args.rollouts}, K={args.k}, "
          f"max_steps={args.max_steps}, backend {args.backend}")
    header = f"{'':28}{'fixed':>14}{'rising':>14}{'rising/fixed':>14}"
    print(header)
    rows = [
        ("candidates per step (mean)", lambda s: s["candidates_per_step"]["mean"]),
        ("candidates per step (max)", lambda s: s["candidates_per_step"]["max"]),
        ("steps", lambda s: s["steps"]),
        ("pairs", lambda s: s["pairs"]),
        ("rollouts", lambda s: s["rollouts"]),
        ("rollouts per task", lambda s: s["rollouts"] / s["tasks"]),
        ("generated tokens", lambda s: s["generated_tokens"]),
        ("generated tokens per task", lambda s: s["generated_tokens"] / s["tasks"]),
        ("wall seconds", lambda s: s["wall_seconds"]),
    ]
    for name, get in rows:
        fixed, rising = get(results["fixed"]), get(results["rising"])
        ratio = f"{rising / fixed:.2f}" if fixed else "n/a"
        print(f"{name:28}{fixed:>14.2f}{rising:>14.2f}{ratio:>14}")
    for strategy, stats in results.items():
        print(f"{strategy}: candidates-per-step histogram {stats['candidates_per_step']['histogram']}, "
              f"rising rate {stats['rising_rate']}, rollouts per pair {per(stats['rollouts'], stats['pairs'])}, "
              f"generated tokens per pair {per(stats['generated_tokens'], stats['pairs'])}, "
              f"mean final reward {stats['mean_final_reward']:.2f}")
    if args.adaptive:
        full = results["rising"]["rollouts"]
        print(f"rising with the adaptive budget: {adaptive['rollouts']} rollouts vs {full} "
              f"({adaptive['rollouts_saved']} saved, {adaptive['candidates_per_step']['mean']:.2f} candidates per step, "
              f"{adaptive['pairs']} pairs)")


if __name__ == "__main__":
    main()

