"""A training run's progress: rro's display, in place of the trainer's tqdm bar and printed dicts,
and the clock that times the whole training across interruptions.

transformers' Trainer reports through a callback: a tqdm bar that also writes every log dict
(`{'loss': '1.234', 'grad_norm': ...}`) as a line, or, with `disable_tqdm`, a printer of the same
dicts. rro swaps that callback for `TrainingProgress`: a `StageProgress` over optimizer steps that
shows the running loss (and for DPO the reward accuracy and margin) and the time left, as a bar on
a terminal and as plain lines in a log. With `rro -v` the trainer's own callback stays, as
transformers prints it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from rro import terminal
from rro.jsonl import write_json_atomic
from rro.progress import StageProgress

# Log keys worth a place on the line, and how they are labelled there.
_SHOWN = {"loss": "loss", "train_loss": "mean loss", "rewards/accuracies": "acc", "rewards/margins": "margin",
          "learning_rate": "lr"}


def _figures(logs: dict[str, float]) -> str:
    parts = []
    for key, label in _SHOWN.items():
        if key in logs:
            value = float(logs[key])
            parts.append(f"{label} {value:.2e}" if key == "learning_rate" else f"{label} {value:.4f}")
    return "  ".join(parts)


class TrainingProgress(TrainerCallback):
    """Progress over optimizer steps with the latest logged figures."""

    def __init__(self, kind: str):
        self.kind = kind
        self.progress: StageProgress | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.progress = StageProgress(self.kind, state.max_steps, "steps", completed=state.global_step).__enter__()

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and (figures := _figures(logs)):
            self.progress.update(figures=figures)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(completed=state.global_step)
            self.progress.__exit__(None, None, None)
            self.progress = None


def show_training_progress(trainer, kind: str) -> None:
    """Give `trainer` rro's display instead of its own (unless `rro -v` asked for the library's)."""
    if terminal.verbose():
        return
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(TrainingProgress(kind))


def stop_training_progress(trainer) -> None:
    """End the display when training stops early (an error, an interrupt): the trainer then never
    calls `on_train_end`, and a log's periodic lines would go on."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TrainingProgress) and callback.progress is not None:
            callback.progress.__exit__(None, None, None)
            callback.progress = None


ELAPSED_FILE = "rro-elapsed.json"  # in each resumable checkpoint: the training's seconds up to it


class TrainingClock(TrainerCallback):
    """The training's seconds, earlier pieces of an interrupted training included: each checkpoint
    records the time spent to reach it, and a training resumed from it starts counting from there,
    so `rro-train.json` tells what the model cost, not what its last piece did. (Work done after
    the last checkpoint of an interrupted piece is redone, and counted once.) A checkpoint saved
    without the record (by an older rro) leaves the earlier time unknown, and the record says so."""

    def __init__(self, started: float):
        self.started = started  # when this piece began (loading the model included)
        self.resumed_from_step: int | None = None
        self.earlier_seconds: float | None = 0.0

    def seconds(self) -> float:
        return round(time.time() - self.started + (self.earlier_seconds or 0.0), 1)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step:  # resumed: the trainer has loaded the checkpoint's state
            self.resumed_from_step = state.global_step
            saved = Path(args.output_dir) / f"checkpoint-{state.global_step}" / ELAPSED_FILE
            self.earlier_seconds = json.loads(saved.read_text())["seconds"] if saved.exists() else None

    def on_save(self, args, state, control, **kwargs):
        if self.earlier_seconds is not None:  # an unknown start stays unknown
            write_json_atomic(Path(args.output_dir) / f"checkpoint-{state.global_step}" / ELAPSED_FILE,
                              {"seconds": self.seconds()})

    def record(self) -> dict:
        """The training record's timing: `train_seconds`, and where it resumed and whether the
        seconds before that are in it."""
        timing: dict = {"train_seconds": self.seconds()}
        if self.resumed_from_step is not None:
            timing["resumed_from_step"] = self.resumed_from_step
            if self.earlier_seconds is None:
                timing["train_seconds_from_step"] = self.resumed_from_step
        return timing


def time_training(trainer, started: float) -> None:
    trainer.add_callback(TrainingClock(started))


def training_time(trainer) -> dict:
    """TrainingClock.record() of `trainer`'s clock."""
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, TrainingClock)).record()
