"""`rro sft`: supervised fine-tuning on expert trajectories with TRL's SFTTrainer.

Loss is taken on the assistant turns only (the agent's Thought/Action lines and their end-of-turn
token), never on instructions or observations. Trajectories longer than `max_length` tokens are
left out and counted: TRL would silently cut their end, mid-SQL.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from rro.jsonl import numbered_records
from rro.config import SftConfig
from rro.folder_lock import hold_folder
from rro.train.common import (
    SMOLLM2_TEMPLATE,
    SMOLLM2_TRAINING_TEMPLATE,
    finished_training,
    keep_tensorboard_logs,
    last_checkpoint,
    load_model_and_tokenizer,
    lora_config,
    prepare_output,
    save_trained,
    score_loss_positions_only,
    token_count,
    trainer_arguments,
)

console = Console(stderr=True)


def load_conversations(config: SftConfig) -> list[list[dict]]:
    conversations = []
    for path in config.data:
        if not path.exists():
            raise FileNotFoundError(f"training data {path} does not exist (make it with `rro data experts`)")
        for number, record in numbered_records(path):
            messages = record.get("messages")
            if not messages or not any(m.get("role") == "assistant" for m in messages):
                raise ValueError(f"{path}:{number}: a record needs a `messages` list with an assistant turn")
            conversations.append(messages)
    return conversations[: config.limit] if config.limit else conversations


def training_template(tokenizer) -> str | None:
    """A chat template with `{% generation %}` markers, or None to let TRL patch the templates it knows
    (Gemma, Qwen, Llama...) and refuse the others with its own message."""
    if tokenizer.chat_template == SMOLLM2_TEMPLATE:
        return SMOLLM2_TRAINING_TEMPLATE
    return None


def build_trainer(config: SftConfig):
    """TRL's SFTTrainer for `config`, with the data fitted and the template marked; also returns the
    tokenizer's original template (restored on save) and what was left out."""
    from datasets import Dataset
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    from rro.train.progress import show_training_progress, time_training

    started = time.time()
    conversations = load_conversations(config)
    work = prepare_output(config)
    model, tokenizer = load_model_and_tokenizer(config)
    original_template = tokenizer.chat_template
    fitting = [c for c in conversations if token_count(tokenizer, c) <= config.max_length]
    too_long = len(conversations) - len(fitting)
    if too_long:
        console.print(f"[yellow]left out {too_long} of {len(conversations)} trajectories longer than "
                      f"max_length={config.max_length} tokens[/yellow]")
    if not fitting:
        raise ValueError(f"no trajectory fits max_length={config.max_length}")
    if (marked := training_template(tokenizer)) is not None:
        tokenizer.chat_template = marked
    score_loss_positions_only()
    args = TrlSFTConfig(**trainer_arguments(config, work), assistant_only_loss=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([{"messages": c} for c in fitting]),
                         processing_class=tokenizer, peft_config=lora_config(config))
    show_training_progress(trainer, "sft")
    time_training(trainer, started)
    keep_tensorboard_logs(trainer, config)
    return trainer, tokenizer, original_template, {"records": len(fitting), "left_out_too_long": too_long}


def sft(config: SftConfig) -> dict:
    """Fine-tune `config.model` on the trajectories; a finished training is a no-op, an interrupted
    one resumes from its last checkpoint. The output folder is held throughout (rro.folder_lock)."""
    with hold_folder(config.output):
        return _sft(config)


def _sft(config: SftConfig) -> dict:
    from rro.train.progress import stop_training_progress

    if (record := finished_training(config)) is not None:
        return record
    trainer, tokenizer, original_template, details = build_trainer(config)
    try:
        result = trainer.train(resume_from_checkpoint=last_checkpoint(Path(config.output) / "trainer"))
    finally:
        stop_training_progress(trainer)
    return save_trained(trainer, tokenizer, config, "sft", original_template, {**details, "metrics": result.metrics})
