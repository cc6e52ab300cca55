"""`rro dpo`: DPO on preference pairs with TRL's DPOTrainer.

The reference model is the starting (SFT) checkpoint. Its log-probabilities are computed once
before training (`precompute_ref_log_probs`), so no second model stays in memory; TRL would
otherwise reload the reference from disk, not from memory. Step-level pairs (one assistant
message each side) and outcome-level pairs (the rest of a trajectory each side) mix freely.

TRL silently drops pairs whose prompt reaches `max_length` and cuts completions at the end, so
pairs are fitted first: the oldest exchanges of the task (an agent turn and its observation) are
trimmed from the prompt until prompt + the longer side fits; pairs that still do not fit are left
out and counted.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from rich.console import Console

from rro.jsonl import numbered_records
from rro.config import DpoConfig
from rro.folder_lock import hold_folder
from rro.train.common import (
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
    write_train_record,
)

console = Console(stderr=True)


def load_pairs(config: DpoConfig) -> list[dict]:
    pairs = []
    for path in config.pairs:
        if not path.exists():
            raise FileNotFoundError(f"pairs file {path} does not exist (make it with `rro explore`)")
        for number, record in numbered_records(path):
            if not all(isinstance(record.get(key), list) and record[key] for key in ("prompt", "chosen", "rejected")):
                raise ValueError(f"{path}:{number}: a pair needs non-empty `prompt`, `chosen` and `rejected` message lists")
            pairs.append({key: record[key] for key in ("prompt", "chosen", "rejected")})
    if config.pairs_sample is not None and config.pairs_sample < len(pairs):
        # The kept pairs stay in file order: only which pairs, not their order, comes from the seed.
        kept = sorted(random.Random(config.seed).sample(range(len(pairs)), config.pairs_sample))
        pairs = [pairs[index] for index in kept]
    return pairs[: config.limit] if config.limit else pairs


def _task_opening(prompt: list[dict]) -> int:
    """Index of the message that opens the task: the last user message that is not an observation
    (earlier messages are the instruction's worked example, which is kept)."""
    for index in range(len(prompt) - 1, -1, -1):
        message = prompt[index]
        if message["role"] == "user" and not message["content"].startswith("Observation:"):
            return index
    return 0


def fit_pair(tokenizer, pair: dict, max_length: int) -> dict | None:
    """The pair with its oldest exchanges trimmed until it fits `max_length`, or None if it cannot."""
    prompt = list(pair["prompt"])
    opening = _task_opening(prompt)
    while max(token_count(tokenizer, prompt + pair[side]) for side in ("chosen", "rejected")) > max_length:
        if len(prompt) < opening + 3:  # nothing left to trim but the task itself
            return None
        del prompt[opening + 1: opening + 3]  # the oldest agent turn and its observation
    return {**pair, "prompt": prompt}


def build_trainer(config: DpoConfig):
    """TRL's DPOTrainer for `config` with the pairs fitted; also returns what was trimmed or left out."""
    from datasets import Dataset
    from trl import DPOConfig as TrlDPOConfig
    from trl import DPOTrainer

    from rro.train.progress import show_training_progress, time_training

    started = time.time()
    pairs = load_pairs(config)
    if not pairs:
        raise ValueError("no preference pairs to train on")
    work = prepare_output(config)
    model, tokenizer = load_model_and_tokenizer(config)
    fitted = [fit_pair(tokenizer, pair, config.max_length) for pair in pairs]
    kept = [pair for pair in fitted if pair is not None]
    trimmed = sum(1 for pair, fit in zip(pairs, fitted) if fit is not None and len(fit["prompt"]) < len(pair["prompt"]))
    if len(kept) < len(pairs):
        console.print(f"[yellow]left out {len(pairs) - len(kept)} of {len(pairs)} pairs that do not fit "
                      f"max_length={config.max_length} tokens[/yellow]")
    if not kept:
        raise ValueError(f"no pair fits max_length={config.max_length}")
    score_loss_positions_only()
    loss = {"loss_type": ["sigmoid"]}
    if config.sft_weight > 0:  # IPR's mixture: DPO plus NLL on the chosen side
        loss = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, config.sft_weight]}
    args = TrlDPOConfig(**trainer_arguments(config, work), beta=config.beta, precompute_ref_log_probs=True, **loss)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(kept), processing_class=tokenizer,
                         peft_config=lora_config(config))
    show_training_progress(trainer, "dpo")
    time_training(trainer, started)
    keep_tensorboard_logs(trainer, config)
    return trainer, tokenizer, {"records": len(kept), "left_out_too_long": len(pairs) - len(kept), "trimmed": trimmed}


def dpo(config: DpoConfig) -> dict:
    """Train `config.model` on the pairs; a finished training is a no-op, an interrupted one resumes.
    The output folder is held throughout (rro.folder_lock)."""
    with hold_folder(config.output):
        return _dpo(config)


def _dpo(config: DpoConfig) -> dict:
    from rro.train.progress import stop_training_progress

    if (record := finished_training(config)) is not None:
        return record
    trainer, tokenizer, details = build_trainer(config)
    try:
        result = trainer.train(resume_from_checkpoint=last_checkpoint(Path(config.output) / "trainer"))
    finally:
        stop_training_progress(trainer)
    return save_trained(trainer, tokenizer, config, "dpo", tokenizer.chat_template,
                        {**details, "metrics": result.metrics})


def keep_starting_model(config: DpoConfig, reason: str) -> dict:
    """Save the starting model unchanged as the output, saying why (the pipeline's answer to an
    exploration that found no pairs: the method then is its starting model, honestly labelled)."""
    with hold_folder(config.output):
        if (record := finished_training(config)) is not None:
            return record
        from rro.train.progress import TrainingClock

        clock = TrainingClock(time.time())  # the same timing record as a training's
        model, tokenizer = load_model_and_tokenizer(config)
        out = Path(config.output)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        return write_train_record(config, "dpo", {"records": 0, "unchanged": reason, "log_history": []},
                                  clock.record())

