"""`rro explore`: run a strategy over tasks, resumably, and write pairs, walks and cost statistics.

Tasks are explored in chunks of `tasks_per_batch`. When a chunk ends, one record per task is
appended to `DIR/walks.jsonl` (its chosen path, values, per-step costs and pairs): that file is the
run's durable record. `pairs.jsonl`, `steps.jsonl` and `stats.json` are derived from it once, when
the run ends (atomically); rewriting them after every chunk would cost I/O quadratic in the run's
length. An interrupted run resumes after the last finished task, never duplicates a task's records,
and writes the derived files when it ends; a finished run is a no-op.

Chunks are cut from the whole task list (not from what is left), so a resumed run explores the same
chunks as an uninterrupted one. With `workers > 1` the chunks go to Ray actors (rro.workers), each
with its own policy; this process alone writes the files, in the order chunks finish.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from rro.config import ConfigError, ExploreConfig, guard_output_dir
from rro.envs.base import Task, spec
from rro.explore.baselines import ipr_tasks, outcome_tasks
from rro.explore.records import WALKS, WalkLog, WalkRecord, read_walks, write_pairs, write_steps, write_walks
from rro.explore.replay import ReplayError, replay_exploration
from rro.explore.walk import walk_tasks
from rro.folder_lock import hold_folder
from rro.jsonl import write_json_atomic
from rro.progress import StageProgress
from rro.rollout import SamplingConfig
from rro.tracking import Tracker, exploration_metrics
from rro.values import MonteCarloValues
from rro.workers import pending_chunks, run_chunks

def _walk_record(walk, strategy: str) -> WalkRecord:
    return WalkRecord(
        task_id=walk.task.id,
        strategy=strategy,
        end=walk.end,
        reward=walk.episode.reward,
        values=walk.values,
        instruction=walk.task.instruction,
        turns=[step.turn for step in walk.episode.steps],
        observations=[step.observation for step in walk.episode.steps],
        messages=walk.episode.messages,
        initial_cost=walk.initial_cost,
        steps=walk.steps,
        pairs=walk.pairs,
    )


def summarize_steps(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Cost and yield of an exploration run: means and full distributions."""
    steps = [step for record in records for step in record["steps"]]
    candidates = [step["candidates"] for step in steps]
    rose = [step["rose"] for step in steps if step["rose"] is not None]
    initial = [record.get("initial_cost") or {} for record in records]
    rollouts = sum(step["rollouts"] for step in steps) + sum(c.get("rollouts", 0) for c in initial)
    generated = sum(step["candidate_generated_tokens"] + step["rollout_generated_tokens"] for step in steps) + \
        sum(c.get("rollout_generated_tokens", 0) for c in initial)
    prompt = sum(step["candidate_prompt_tokens"] + step["rollout_prompt_tokens"] for step in steps) + \
        sum(c.get("rollout_prompt_tokens", 0) for c in initial)
    pairs = sum(len(record["pairs"]) for record in records)
    mean = lambda values: statistics.fmean(values) if values else 0.0  # noqa: E731
    return {
        "tasks": len(records),
        "steps": len(steps),
        "pairs": pairs,
        "pairs_per_task": pairs / len(records) if records else 0.0,
        "candidates_per_step": {"mean": mean(candidates), "max": max(candidates, default=0),
                                "histogram": {str(k): v for k, v in sorted(Counter(candidates).items())}},
        "distinct_actions_per_step": mean([step["distinct_actions"] for step in steps]),
        "rising_rate": mean(rose) if rose else None,
        "rollouts": rollouts,
        "rollouts_per_pair": rollouts / pairs if pairs else None,
        "env_steps": sum(step["env_steps"] for step in steps) + sum(c.get("env_steps", 0) for c in initial),
        "generated_tokens": generated,
        "generated_tokens_per_pair": generated / pairs if pairs else None,
        "prompt_tokens": prompt,
        "cache_hits": sum(step["cache_hits"] for step in steps),
        "rollouts_saved": sum(step.get("rollouts_saved", 0) for step in steps),
        # Real elapsed time: each chunk's wall time shared among its tasks. (Per-step `wall_s`
        # overlaps across the tasks explored together, so it is not summed.) None when replayed.
        "wall_seconds": sum(record["wall_s"] for record in records) if all("wall_s" in r for r in records) else None,
        "mean_final_reward": mean([record["reward"] for record in records]),
        "ends": dict(Counter(record["end"] for record in records)),
        "per_task": [{
            "task_id": record["task_id"], "steps": len(record["steps"]),
            "candidates": sum(s["candidates"] for s in record["steps"]),
            "rollouts": sum(s["rollouts"] for s in record["steps"]) + (record.get("initial_cost") or {}).get("rollouts", 0),
            "pairs": len(record["pairs"]), "reward": record["reward"],
        } for record in records],
    }


def _write_outputs(out: Path, records: list[dict[str, Any]], header: dict[str, Any], settings: str) -> dict[str, Any]:
    write_pairs(out, [pair for record in records for pair in record["pairs"]], settings)
    write_steps(out, [step for record in records for step in record["steps"]], settings)
    stats = {**header, **summarize_steps(records)}
    write_json_atomic(out / "stats.json", stats)
    return stats


class ExploreChunks:
    """Explores chunks of tasks with one policy and one value estimator: in this process, or once
    per worker (built there from the config, so it must stay picklable)."""

    def __init__(self, config: ExploreConfig, policy=None):
        self.config = config
        self.policy = policy if policy is not None else config.load_policy()
        self.env_spec = spec(config.env)
        self.icl_shots = config.resolved_icl_shots()
        self.values = MonteCarloValues(
            self.policy, config.make_env, self.env_spec.terminal_actions, config.rollouts,
            SamplingConfig(config.rollout_temperature, config.top_p, config.max_new_tokens, config.seed + 1),
            config.max_steps, self.icl_shots, config.max_invalid_turns,
            adaptive=config.adaptive, reward_range=self.env_spec.reward_range,
        )

    def __call__(self, chunk: list[Task]) -> list[dict[str, Any]]:
        config, started = self.config, time.perf_counter()
        self.values.cache.clear()  # keys hold the task: nothing carries over to other tasks
        if config.strategy in ("rising", "fixed"):
            records = [_walk_record(w, config.strategy)
                       for w in walk_tasks(chunk, self.policy, self.values, config.make_env, config, self.icl_shots)]
        elif config.strategy == "ipr":
            records = ipr_tasks(chunk, self.policy, self.values, config.make_env, self.env_spec, config, self.icl_shots)
        else:
            records = outcome_tasks(chunk, self.policy, config.make_env, self.env_spec, config, self.icl_shots)
        for record in records:
            record["wall_s"] = (time.perf_counter() - started) / len(records)
        return records


def explore(config: ExploreConfig, policy=None) -> dict[str, Any]:
    """Run (or resume) an exploration; `policy` may be passed in to reuse a loaded model (one
    worker only: with more, every worker loads its own). The output folder is held for the whole
    run (rro.folder_lock)."""
    with hold_folder(config.output):
        return _explore(config, Path(config.output), policy)


def _explore(config: ExploreConfig, out: Path, policy) -> dict[str, Any]:
    # Every line of walks.jsonl is checked (readable, of these settings) before anything is written.
    settings = guard_output_dir(config, out, records=(WALKS,))
    walked = config.strategy in ("rising", "fixed")  # the strategies that anchor and rise_at_max apply to
    header = {"strategy": config.strategy, "model": config.model, "env": config.env, "split": config.split,
              "anchor": config.anchor if walked else None, "rise_at_max": config.rise_at_max if walked else None}
    if config.replay_from is not None:  # nothing to sample: every record comes from the recording at once
        try:
            records = replay_exploration(config)
        except ReplayError as err:
            raise ConfigError(str(err)) from None
        write_walks(out, records, settings)
        stats = _write_outputs(out, records, {**header, "replayed_from": str(config.replay_from)}, settings)
        with Tracker(config.report_to, out, config.model_dump(mode="json")) as tracker:  # all at once
            tracker.log(exploration_metrics(stats, records), step=len(records))
            tracker.histogram("explore/candidates_per_step_distribution",
                              [step["candidates"] for record in records for step in record["steps"]], step=len(records))
        return stats
    tasks = config.tasks()
    done = {record["task_id"]: record for record in read_walks(out)}
    chunks = pending_chunks(tasks, set(done), config.tasks_per_batch)

    def figures(stats: dict[str, Any]) -> str:
        return (f"cand/step {stats['candidates_per_step']['mean']:.2f}  rollouts {stats['rollouts']}  "
                f"pairs {stats['pairs']}")

    with Tracker(config.report_to, out, config.model_dump(mode="json")) as tracker, WalkLog(out, settings) as writer, \
            StageProgress(f"explore {config.strategy}", len(tasks), "tasks", completed=len(done),
                          figures=figures(summarize_steps(list(done.values())))) as progress:
        def show():
            records = list(done.values())
            stats = summarize_steps(records)
            progress.update(completed=len(done), figures=figures(stats))
            tracker.log(exploration_metrics(stats, records), step=len(done))

        show()
        for _chunk, records in run_chunks(config, chunks, partial(ExploreChunks, config), policy):
            for record in records:
                writer.write(record)
                done[record["task_id"]] = record
            show()
        # The distribution, not only the mean: how many candidates each step drew.
        tracker.histogram("explore/candidates_per_step_distribution",
                          [step["candidates"] for record in done.values() for step in record["steps"]], step=len(done))
    return _write_outputs(out, [done[t.id] for t in tasks], header, settings)
