"""Exploration on 1 and on more workers: tasks per hour, rollouts per hour, and the scaling efficiency.

The same exploration (same tasks, model, seeds and chunks) runs once per worker count, each into its
own output folder, and the records are checked to be identical. Throughput counts the whole command
(Ray start-up and every worker's model load included) and, separately, the exploring alone (from
the first chunk handed out to the last one back, read from the chunk timings the driver records).
Efficiency = (throughput with k workers / throughput with 1) / k: 1.0 is perfect scaling.

On a machine with C cores, k CPU workers get C/k threads each: the total compute does not grow, so
expect efficiency <= 1 (k workers only win where one process leaves cores idle: Python-side work
in the environments, small batches). With GPUs (`--num-gpus 1`), each worker holds its own GPU.

    python bench/explore_scaling.py [--model smollm2-135m] [--tasks 8] [--workers 1 2] \
        [--tasks-per-batch 2] [--rollouts 5] [--k 5] [--max-steps 5] [--max-new-tokens 96] \
        [--num-gpus 0] [--ray-address ADDR] [-o runs/bench-scaling]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from rro.config import ExploreConfig
from rro.explore import explore
from rro.terminal import quiet_libraries


def records(out: Path) -> dict[str, dict]:
    """walks.jsonl by task, without timings."""
    result = {}
    for line in (out / "walks.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("wall_s")
        for step in record["steps"]:
            step.pop("wall_s")
        result[record["task_id"]] = record
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks-per-batch", type=int, default=2)
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--num-gpus", type=float, default=0.0)
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/bench-scaling"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it
    # One worker runs in this process and gets every core, as k workers share them (rro.workers
    # gives each cores / k threads), whatever OMP_NUM_THREADS says.
    torch.set_num_threads(os.cpu_count() or 1)

    results = {}
    for workers in args.workers:
        out = args.output / f"workers-{workers}"
        shutil.rmtree(out, ignore_errors=True)  # a fresh run each time: a finished one would be a no-op
        config = ExploreConfig(model=args.model, split="train", limit=args.tasks, rollouts=args.rollouts,
                               max_candidates=args.k, max_steps=args.max_steps, max_new_tokens=args.max_new_tokens,
                               tasks_per_batch=args.tasks_per_batch, workers=workers, ray_address=args.ray_address,
                               num_gpus=args.num_gpus, seed=0, output=out)
        started = time.perf_counter()
        stats = explore(config)
        wall = time.perf_counter() - started
        # Each record holds its chunk's wall time shared among the chunk's tasks: summed per worker
        # count they give the exploring time; chunks overlap across workers, so divide by k.
        exploring = stats["wall_seconds"] / workers
        results[workers] = {"wall": wall, "exploring": exploring, "stats": stats, "records": records(out)}

    base = results[args.workers[0]]
    print(f"{os.cpu_count()} cores; model {args.model}, {args.tasks} InterCode-SQL train tasks, chunks of {args.tasks_per_batch}, "
          f"N={args.rollouts}, K={args.k}, max_steps={args.max_steps}, max_new_tokens={args.max_new_tokens}, "
          f"num_gpus={args.num_gpus}")
    print(f"{'workers':>8}{'wall s':>9}{'tasks/h':>9}{'rollouts/h':>12}{'efficiency':>12}"
          f"{'tasks/h exploring':>19}{'efficiency':>12}{'same records':>14}")
    for workers, result in results.items():
        tasks, rollouts = result["stats"]["tasks"], result["stats"]["rollouts"]
        per_hour = tasks * 3600 / result["wall"]
        exploring_per_hour = tasks * 3600 / result["exploring"]
        scale = workers / args.workers[0]
        efficiency = per_hour / (tasks * 3600 / base["wall"]) / scale
        exploring_efficiency = exploring_per_hour / (tasks * 3600 / base["exploring"]) / scale
        print(f"{workers:>8}{result['wall']:>9.1f}{per_hour:>9.1f}{rollouts * 3600 / result['wall']:>12.0f}"
              f"{efficiency:>12.2f}{exploring_per_hour:>19.1f}{exploring_efficiency:>12.2f}"
              f"{str(result['records'] == base['records']):>14}")


if __name__ == "__main__":
    main()
