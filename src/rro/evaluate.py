"""Evaluation: run a policy on a split, write every episode and a summary.

`DIR/episodes.jsonl` gets one record per task as soon as it finishes, so an interrupted run
resumes where it stopped; `DIR/summary.json` is rewritten atomically at the end.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rro.agent.trajectory import Episode, JsonlWriter, read_episodes, write_json_atomic
from rro.config import ConfigError, EvalConfig
from rro.envs.base import spec
from rro.rollout import run_expert_episode

# Fields that change what an episode is; an output folder holds episodes of one setting only.
_RUN_IDENTITY = ("env", "policy", "split", "scheme", "backend", "max_steps", "icl_shots", "include_empty_dbs")


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
        "episode_wall_seconds": sum(e.wall_s for e in episodes),
        "terminations": dict(terminations),
    }


def _check_same_run(config: EvalConfig, out: Path) -> None:
    saved_path = out / "config.json"
    identity = {key: getattr(config, key) for key in _RUN_IDENTITY}
    if saved_path.exists():
        saved = json.loads(saved_path.read_text())
        changed = {k: (saved.get(k), v) for k, v in identity.items() if saved.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ConfigError(f"{out} holds a run with different settings ({details}); use another output folder")
    write_json_atomic(saved_path, config.model_dump(mode="json"))


def evaluate(config: EvalConfig, on_episode: Callable[[Episode], None] | None = None) -> dict:
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_run(config, out)
    tasks = config.tasks()
    episodes_path = out / "episodes.jsonl"
    finished = {e.task_id: e for e in read_episodes(episodes_path)}
    todo = [task for task in tasks if task.id not in finished]

    env_spec = spec(config.env)
    started = time.perf_counter()
    env = config.make_env()
    try:
        with JsonlWriter(episodes_path) as writer, Progress(
            TextColumn("[bold]eval[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("avg reward {task.fields[avg]:.1f}"),
            TimeElapsedColumn(),
        ) as progress:
            rewards = [e.reward for e in finished.values()]
            bar = progress.add_task(config.env, total=len(tasks), completed=len(tasks) - len(todo),
                                    avg=100 * statistics.fmean(rewards) if rewards else 0.0)
            for task in todo:
                episode = run_expert_episode(env_spec, env, task, config.max_steps)
                writer.write(episode)
                finished[task.id] = episode
                rewards.append(episode.reward)
                progress.update(bar, advance=1, avg=100 * statistics.fmean(rewards))
                if on_episode:
                    on_episode(episode)
    finally:
        env.close()

    selected = [finished[task.id] for task in tasks]
    summary = {
        "env": config.env,
        "policy": config.policy,
        "split": config.split,
        "scheme": config.scheme,
        "backend": config.backend,
        **summarize(selected),
        "wall_seconds_this_run": time.perf_counter() - started,
    }
    write_json_atomic(out / "summary.json", summary)
    return summary
