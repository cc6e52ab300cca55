"""One rich progress display for a training run, in place of the trainer's tqdm bar and printed dicts.

transformers' Trainer reports through a callback: a tqdm bar that also writes every log dict
(`{'loss': '1.234', 'grad_norm': ...}`) as a line, or, with `disable_tqdm`, a printer of the same
dicts. rro swaps that callback for `TrainingProgress`: one line that shows the step, the running
loss (and for DPO the reward accuracy and margin) and the time left. With `rro -v` the trainer's
own callback stays, as transformers prints it.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from rro import terminal

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
    """A rich bar over optimizer steps with the latest logged figures."""

    def __init__(self, kind: str):
        self.kind = kind
        self.progress: Progress | None = None
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn(f"[bold]{self.kind}[/bold]"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TextColumn("{task.fields[figures]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.progress.start()
        self.bar = self.progress.add_task(self.kind, total=state.max_steps, completed=state.global_step, figures="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.bar, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and (figures := _figures(logs)):
            self.progress.update(self.bar, figures=figures)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.bar, completed=state.global_step)
            self.progress.stop()
            self.progress = None


def show_training_progress(trainer, kind: str) -> None:
    """Give `trainer` rro's display instead of its own (unless `rro -v` asked for the library's)."""
    if terminal.verbose():
        return
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(TrainingProgress(kind))
