"""Expert trajectories for SFT: the environment's oracle, replayed and kept when it scores at least
`min_reward` (1.0 by default: only successes).

Each kept episode becomes one JSONL record with a `messages` list in the shared conversation
format, which `datasets` and TRL's SFT trainer read as-is.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rro.jsonl import write_json_atomic, write_jsonl_atomic
from rro.config import ExpertsConfig
from rro.envs.base import spec
from rro.progress import StageProgress
from rro.rollout import run_expert_episode


def collect_experts(config: ExpertsConfig) -> dict:
    env_spec = spec(config.env)
    tasks = config.tasks()
    env = config.make_env()
    kept, rewards, dropped = [], Counter(), []
    try:
        with StageProgress(f"experts {config.env}", len(tasks), "tasks") as progress:
            for task in tasks:
                episode = run_expert_episode(env_spec, env, task, config.max_steps)
                rewards[episode.reward] += 1
                if episode.reward >= config.min_reward:
                    kept.append({
                        "env": episode.env,
                        "task_id": episode.task_id,
                        "reward": episode.reward,
                        "task_fields": episode.task_fields,
                        "messages": episode.messages,
                    })
                else:
                    dropped.append(task.id)
                progress.update(advance=1)
    finally:
        env.close()
    output = Path(config.output)
    write_jsonl_atomic(output, kept)
    report = {
        "env": config.env,
        "split": config.split,
        "env_options": config.env_options_json(),
        "tasks": len(tasks),
        "min_reward": config.min_reward,
        "kept": len(kept),
        "dropped_task_ids": dropped,
        "reward_counts": {str(round(k, 4)): v for k, v in sorted(rewards.items())},
        "mean_reward": sum(k * v for k, v in rewards.items()) / max(1, len(tasks)),
    }
    write_json_atomic(output.with_suffix(".report.json"), report)
    return report
