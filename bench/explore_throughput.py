"""Exploration throughput against `tasks_per_batch` and, with vLLM, the KV-cache block size.

Tasks advance in rounds and every round's candidates and rollout turns go to the policy in one
call (rro.explore.walk), so `tasks_per_batch` is the batch the engine sees: N rollouts x that many
tasks per call at most, shrinking as episodes end. A small chunk survives an interruption at lower
cost (a run saves per finished chunk); a large one keeps the engine busier.

vLLM's prefix cache reuses whole KV blocks only: the block size is how much of the conversation a
rollout's next turn shares with its previous one that is served from the cache rather than computed
again (rro uses 32 on CPU, where vLLM's default is 128: `kv_block_size`).

The same tasks are explored once per (block size, chunk size), side by side in one process: one
engine per block size (started before its runs, so no run pays a start-up). Prints wall time, tasks
and rollouts per hour, generated tokens per second, the share of prompt tokens served from the
prefix cache, and each run's speed relative to the first. A warm cache favours the later chunk sizes
of a block size: list the sizes largest first to keep the comparison conservative.

    python bench/explore_throughput.py --model runs/quickstart/sft --policy-backend vllm \\
        --tasks 8 --sizes 8 2 --block-sizes 128 32 --strategy fixed --rollouts 2 --k 3 --max-steps 6
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from rro.config import ExploreConfig
from rro.explore import explore
from rro.terminal import quiet_libraries


def prompt_cache(policy) -> tuple[int, int]:
    """Prompt tokens the engine served from its prefix cache, and all it was sent (vLLM only)."""
    return getattr(policy, "prompt_tokens_cached", 0), getattr(policy, "prompt_tokens_total", 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--policy-backend", default="hf", choices=["hf", "vllm"])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--hardness", nargs="*", default=[])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 2], help="tasks_per_batch values")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[None],
                        help="vLLM KV-cache block sizes (default: rro's own)")
    parser.add_argument("--strategy", default="fixed", choices=["rising", "fixed", "ipr"])
    parser.add_argument("--anchor", default="policy", choices=["policy", "expert"])
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/bench-throughput"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    def config(block: int | None, size: int) -> ExploreConfig:
        return ExploreConfig(model=args.model, policy_backend=args.policy_backend, kv_block_size=block, split="train",
                             limit=args.tasks, hardness=args.hardness, strategy=args.strategy, anchor=args.anchor,
                             rollouts=args.rollouts, max_candidates=args.k, max_steps=args.max_steps,
                             max_new_tokens=args.max_new_tokens, tasks_per_batch=size, seed=0,
                             output=args.output / f"block-{block or 'default'}-tasks-per-batch-{size}")

    results = []
    for block in args.block_sizes:
        policy = config(block, args.sizes[0]).load_policy()  # a new engine per block size (the old one is shut down)
        for size in args.sizes:
            run = config(block, size)
            shutil.rmtree(run.output, ignore_errors=True)  # a fresh run each time: a finished one would be a no-op
            started, (cached_before, total_before) = time.perf_counter(), prompt_cache(policy)
            stats = explore(run, policy=policy)
            cached, total = prompt_cache(policy)
            results.append((block, size, time.perf_counter() - started, stats, total - total_before, cached - cached_before))

    print(f"{os.cpu_count()} cores; {args.policy_backend} backend, model {args.model}, {args.tasks} InterCode-SQL "
          f"train tasks, {args.strategy} ({args.anchor} anchor), N={args.rollouts}, K={args.k}, "
          f"max_steps={args.max_steps}, max_new_tokens={args.max_new_tokens}")
    print(f"{'block':>8}{'tasks/batch':>12}{'wall s':>9}{'tasks/h':>9}{'rollouts':>10}{'rollouts/h':>12}"
          f"{'tokens/s':>10}{'prompt tokens':>15}{'cached':>8}{'speed':>8}")
    first_wall = results[0][2]
    for block, size, wall, stats, prompt, cached in results:
        print(f"{block or 'rro':>8}{size:>12}{wall:>9.1f}{stats['tasks'] * 3600 / wall:>9.1f}{stats['rollouts']:>10}"
              f"{stats['rollouts'] * 3600 / wall:>12.0f}{stats['generated_tokens'] / wall:>10.1f}"
              f"{prompt:>15}{cached / prompt if prompt else 0:>8.2f}{first_wall / wall:>7.2f}x")


if __name__ == "__main__":
    main()
