"""Exploration's and evaluation's running figures, sent where training's loss curves go (`report_to`).

Training reports through TRL (`report_to = "tensorboard"` writes event files under
`OUT/trainer/runs/`). `rro explore` and `rro eval` report to the same tracker: TensorBoard event
files in `OUT/tensorboard/`, so `tensorboard --logdir RUN` shows every stage of a pipeline run
side by side; or a wandb run of its own, named after the output folder. The figures are the ones
the progress line shows, logged whenever tasks finish, with the number of finished tasks as the
step: exploration's candidates per step, pairs, rising rate, values, rollouts, tokens and final
reward; evaluation's average reward, success rate and tokens.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any


class TrackerError(RuntimeError):
    """The tracker named in `report_to` is not installed."""


class _TensorBoard:
    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter  # the writer transformers' callback uses
        except ImportError:
            raise TrackerError("report_to = 'tensorboard' needs the tensorboard package: "
                               "pip install 'rro[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a crash or SIGTERM loses nothing already logged

    def histogram(self, name: str, values: list[float], step: int) -> None:
        if values:
            import numpy

            self.writer.add_histogram(name, numpy.asarray(values), step)

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, out: Path, config: dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise TrackerError("report_to = 'wandb' needs the wandb package: pip install wandb") from None
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "rro"), name=str(out), config=config)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def histogram(self, name: str, values: list[float], step: int) -> None:
        if values:
            self.run.log({name: self.wandb.Histogram(values)}, step=step)

    def close(self) -> None:
        self.run.finish()


class Tracker:
    """Where one command's figures go; does nothing for `report_to = "none"`."""

    def __init__(self, report_to: str, out: Path, config: dict[str, Any]):
        self.backend = (None if report_to == "none" else _TensorBoard(out / "tensorboard") if report_to == "tensorboard"
                        else _Wandb(out, config))

    def log(self, metrics: dict[str, float | None], step: int) -> None:
        if self.backend is not None:
            self.backend.log({name: float(value) for name, value in metrics.items() if value is not None}, step)

    def histogram(self, name: str, values: list[float], step: int) -> None:
        if self.backend is not None:
            self.backend.histogram(name, values, step)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exploration_metrics(stats: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, float | None]:
    """The running figures of an exploration (`stats` from `summarize_steps` over `records`)."""
    chains = [record.get("values") or [] for record in records]
    values = [value for chain in chains for value in chain if value is not None]
    starts = [chain[0] for chain in chains if chain and chain[0] is not None]
    mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
    return {
        "explore/candidates_per_step": stats["candidates_per_step"]["mean"] if stats["steps"] else None,
        "explore/pairs": stats["pairs"],
        "explore/pairs_per_task": stats["pairs_per_task"],
        "explore/rising_rate": stats["rising_rate"],
        "explore/start_value": mean(starts),  # each walk's first bar: V(s0) with prev0 = "value"
        "explore/mean_value": mean(values),  # every bar of every walk: V(s0), then the chosen Q values
        "explore/rollouts": stats["rollouts"],
        "explore/rollouts_per_pair": stats["rollouts_per_pair"],
        "explore/generated_tokens": stats["generated_tokens"],
        "explore/final_reward": stats["mean_final_reward"],
    }


def evaluation_metrics(rewards: list[float], generated_tokens: int) -> dict[str, float]:
    """The running figures of an evaluation, ×100 as its summary reports them."""
    return {
        "eval/avg_reward": 100.0 * statistics.fmean(rewards) if rewards else 0.0,
        "eval/success_rate": 100.0 * sum(reward == 1.0 for reward in rewards) / len(rewards) if rewards else 0.0,
        "eval/generated_tokens": generated_tokens,
    }
