"""rro's progress display for a training run, in place of the trainer's tqdm bar and printed dicts.

transformers' Trainer reports through a callback: a tqdm bar that also writes every log dict
(`{'loss': '1.234', 'grad_norm': ...}`) as a line, or, with `disable_tqdm`, a printer of the same
dicts. rro swaps that callback for `TrainingProgress`: a `StageProgress` over optimizer steps that
shows the running loss (and for DPO the reward accuracy and margin) and the time left, as a bar on
a terminal and as plain lines in a log. With `rro -v` the trainer's own callback stays, as
transformers prints it.
"""

from __future__ import annotations

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from rro import terminal
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
