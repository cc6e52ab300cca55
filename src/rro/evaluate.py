"""Evaluation: run a policy on a split, write every episode and a summary.

`DIR/episodes.jsonl` gets one record per task as soon as it finishes (with `workers > 1`: as soon
as its chunk comes back from a Ray worker), so an interrupted run resumes where it stopped;
`DIR/summary.json` is rewritten atomically at the end.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from rro.agent.trajectory import Episode, read_episodes
from rro.config import EvalConfig, guard_output_dir
from rro.envs.base import Task, spec
from rro.folder_lock import hold_folder
from rro.jsonl import JsonlWriter, write_json_atomic
from rro.progress import StageProgress
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes, run_expert_episode
from rro.tracking import Tracker, evaluation_metrics
from rro.workers import pending_chunks, run_chunks


def _rate(values: Iterable[bool]) -> float:
    values = list(values)
    return 100.0 * sum(values) / len(values) if values else 0.0


def summarize(episodes: list[Episode]) -> dict:
    """Averages as papers report them: rewards and rates ×100."""
    steps = [step for episode in episodes for step in episode.steps]
    by_hardness: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        by_hardness[str(episode.task_fields.get("hardness", "all"))].append(episode)

    def block(group: list[Episode]) -> dict:
        return {
            "tasks": len(group),
            "avg_reward": 100.0 * statistics.fmean(e.reward for e in group) if group else 0.0,
            "success_rate": _rate(e.reward == 1.0 for e in group),
        }

    terminations: dict[str, int] = defaultdict(int)
    for episode in episodes:
        terminations[episode.termination] += 1
    return {
        **block(episodes),
        "by_hardness": {name: block(group) for name, group in sorted(by_hardness.items())},
        "mean_steps": statistics.fmean(len(e.steps) for e in episodes) if episodes else 0.0,
        "invalid_turn_rate": _rate(not step.well_formed for step in steps),
        "unparsed_turn_rate": _rate(step.action is None for step in steps),
        "generated_tokens": sum(step.generated_tokens for step in steps),
        "prompt_tokens": sum(step.prompt_tokens for step in steps),
        "episode_wall_seconds": sum(e.wall_s for e in episodes),
        "terminations": dict(terminations),
    }


class EvalChunks:
    """Runs a policy's episodes on chunks of tasks: in this process, or once per worker."""

    def __init__(self, config: EvalConfig, policy=None, on_finished: Callable[[Episode], None] | None = None):
        self.config = config
        self.policy = policy if policy is not None else config.load_policy()
        self.on_finished = on_finished

    def __call__(self, chunk: list[Task]) -> list[Episode]:
        config = self.config
        return run_episodes(
            [EpisodeRequest(task) for task in chunk],
            self.policy,
            config.make_env,
            SamplingConfig(config.temperature, config.top_p, config.max_new_tokens, config.seed),
            max_steps=config.max_steps,
            icl_shots=config.resolved_icl_shots(),
            max_invalid_turns=config.max_invalid_turns,
            on_finished=self.on_finished and (lambda _request, episode: self.on_finished(episode)),
        )


def evaluate(config: EvalConfig, policy=None) -> dict:
    """Run (or resume) an evaluation; `policy` may be passed in to reuse a loaded model (one worker
    only: with more, every worker loads its own). The output folder is held for the whole run
    (rro.folder_lock)."""
    with hold_folder(config.output):
        return _evaluate(config, Path(config.output), policy)


def _evaluate(config: EvalConfig, out: Path, policy) -> dict:
    # Every line of episodes.jsonl is checked (readable, of these settings) before anything is written.
    settings = guard_output_dir(config, out, records=("episodes.jsonl",))
    tasks = config.tasks()
    episodes_path = out / "episodes.jsonl"
    finished = {e.task_id: e for e in read_episodes(episodes_path)}
    todo = [task for task in tasks if task.id not in finished]
    # Cut from the whole task list, so that a resumed run runs the same chunks.
    chunks = pending_chunks(tasks, set(finished), config.tasks_per_batch)
    if config.policy == "model" and todo and policy is None and config.workers == 1:
        policy = config.load_policy()

    started = time.perf_counter()
    rewards = [e.reward for e in finished.values()]
    tokens = [0]
    all_tokens = [sum(step.generated_tokens for e in finished.values() for step in e.steps)]  # resumed ones too

    def figures() -> str:
        return f"avg reward {100 * statistics.fmean(rewards) if rewards else 0.0:.1f}  tokens {tokens[0]}"

    with Tracker(config.report_to, out, config.model_dump(mode="json")) as tracker, JsonlWriter(episodes_path, settings) as writer, \
            StageProgress(f"eval {config.env}", len(tasks), "tasks", completed=len(tasks) - len(todo),
                          figures=figures()) as progress:
        def record(episode: Episode) -> None:
            writer.write(episode)
            finished[episode.task_id] = episode
            rewards.append(episode.reward)
            tokens[0] += sum(step.generated_tokens for step in episode.steps)
            all_tokens[0] += sum(step.generated_tokens for step in episode.steps)
            progress.update(advance=1, figures=figures())
            tracker.log(evaluation_metrics(rewards, all_tokens[0]), step=len(finished))

        if config.policy == "expert":
            env_spec, env = spec(config.env), config.make_env()
            try:
                for task in todo:
                    record(run_expert_episode(env_spec, env, task, config.max_steps))  # never malformed
            finally:
                env.close()
        elif config.workers == 1 and todo:  # each episode is written as soon as it ends
            run_one_chunk = EvalChunks(config, policy, on_finished=record)
            for chunk in chunks:
                run_one_chunk(chunk)
        else:
            for _chunk, episodes in run_chunks(config, chunks, partial(EvalChunks, config)):
                for episode in episodes:
                    record(episode)

    selected = [finished[task.id] for task in tasks]
    summary = {
        "env": config.env,
        "policy": config.policy,
        "model": config.model if config.policy == "model" else None,
        "split": config.split,
        "env_options": config.env_options_json(),
        **summarize(selected),
        "wall_seconds_this_run": time.perf_counter() - started,
    }
    write_json_atomic(out / "summary.json", summary)
    return summary
