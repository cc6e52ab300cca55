"""What `rro sft` and `rro dpo` share: loading the starting model, TRL arguments that work on a
CPU, resumable checkpoints, and saving an ordinary checkpoint that records how it was trained.

TRL 1.16 on a CPU (see the project's notes): its config defaults ask for a GPU, the chunked LM head
scores every position instead of only those that carry loss, and SmolLM2's chat template lacks the
`{% generation %}` markers that assistant-only loss needs. Each is handled here, once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rro import terminal
from rro.jsonl import write_json_atomic
from rro.config import ConfigError, TrainConfig, guard_output_dir, run_identity, value_when_absent
from rro.policy.models import resolve_model

TRAIN_RECORD = "rro-train.json"  # written into every trained checkpoint; its presence means "rro-trained"

# SmolLM2-Instruct's template as shipped, and the same template with each assistant message's content
# and its end-of-turn token inside `{% generation %}` markers (renders byte-identically; a model that
# is never trained on <|im_end|> never learns to stop).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOLLM2_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def finished_training(config: TrainConfig) -> dict | None:
    """The training record when `config.output` already holds this exact training, else None."""
    record_path = Path(config.output) / TRAIN_RECORD
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    saved, wanted = record.get("config", {}), config.model_dump(mode="json")
    # The settings that identify a training, as for every command (run_identity); one that rro gained
    # after this model was trained counts as what the training did without it (value_when_absent).
    fields = type(config).model_fields
    if any(saved.get(key, value_when_absent(fields[key])) != wanted[key] for key in run_identity(config)):
        raise ConfigError(f"{config.output} holds a model trained with other settings; use another output folder")
    return record


def prepare_output(config: TrainConfig) -> Path:
    """The folder of TRL's resumable checkpoints, refusing to resume a run with other settings."""
    work = Path(config.output) / "trainer"
    guard_output_dir(config, work)
    return work


def load_model_and_tokenizer(config: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(config.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # fp32 master weights: with the weights themselves in bf16, AdamW's updates are lost to rounding.
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def lora_config(config: TrainConfig):
    if not config.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _on_cpu(config: TrainConfig) -> bool:
    import torch

    return config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())


def _use_bf16(config: TrainConfig) -> bool:
    import torch

    from rro.policy.hf import cpu_supports_bf16

    if config.precision != "auto":
        return config.precision == "bf16"
    return cpu_supports_bf16() if _on_cpu(config) else torch.cuda.is_bf16_supported()


def _activation_checkpointing_keyword() -> str:
    """transformers 5.20 renamed TrainingArguments' `gradient_checkpointing` to `activation_checkpointing`;
    rro supports both sides of the rename (vLLM 0.32 needs transformers < 5.20)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {field.name for field in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def trainer_arguments(config: TrainConfig, work: Path) -> dict[str, Any]:
    """Keyword arguments that TRL's SFTConfig and DPOConfig both take."""
    return dict(
        output_dir=str(work),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_steps,
        max_length=config.max_length,
        # TRL turns bf16 on by default and transformers then demands a GPU; on a CPU, use_cpu keeps
        # bf16 as autocast over fp32 weights.
        use_cpu=_on_cpu(config),
        bf16=_use_bf16(config),
        **{_activation_checkpointing_keyword(): config.activation_checkpointing},
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        logging_steps=config.logging_steps,
        report_to=config.report_to,
        seed=config.seed,
        dataloader_num_workers=0,
        # rro draws its own progress line (rro.train.progress); `rro -v` brings the trainer's back.
        disable_tqdm=not terminal.verbose(),
    )


def keep_tensorboard_logs(trainer, config: TrainConfig) -> None:
    """With report_to = "tensorboard", write the event files to OUT/tensorboard/, beside those of
    `rro explore` and `rro eval`: transformers' default, OUT/trainer/runs/, is deleted with the
    optimizer states when training ends (`save_trained`)."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(Path(config.output) / "tensorboard")


def score_loss_positions_only() -> None:
    """Compute the LM head only where loss is taken, on CPUs too (measured 122 -> 238 tokens/s).

    TRL's chunked LM head keeps only the loss positions when its private `_use_triton(device)` says
    so, which it does on CUDA and XPU only; the computation itself is plain torch and bit-identical.
    """
    import trl.trainer.utils as trl_utils
    from trl.kernels.chunked_logprob import _use_triton

    if getattr(trl_utils._use_triton, "rro_patched", False):
        return

    def compact_everywhere(device) -> bool:
        return device.type == "cpu" or _use_triton(device)

    compact_everywhere.rro_patched = True
    trl_utils._use_triton = compact_everywhere


def last_checkpoint(work: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(work)) if work.exists() else None


def token_count(tokenizer, messages: list[dict]) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def write_train_record(config: TrainConfig, kind: str, details: dict[str, Any], timing: dict[str, Any]) -> dict:
    """Write `rro-train.json` into the finished checkpoint: what it is, how it was made, how long it
    took (`timing`: train_seconds, and for a resumed training where it resumed: rro.train.progress)."""
    record = {
        "kind": kind,
        "config": config.model_dump(mode="json"),
        "base_model": resolve_model(config.model),
        **details,
        **timing,
    }
    write_json_atomic(Path(config.output) / TRAIN_RECORD, record)
    return record


def save_trained(trainer, tokenizer, config: TrainConfig, kind: str, chat_template: str | None,
                 details: dict[str, Any]) -> dict:
    """Save weights, tokenizer (with its original chat template) and the training record to
    `config.output`; the record goes last, so its presence means the checkpoint is complete."""
    out = Path(config.output)
    model = trainer.model
    if config.lora:
        model = model.merge_and_unload()  # an ordinary checkpoint that every engine can load
    model.save_pretrained(out)
    tokenizer.chat_template = chat_template  # the marked training template stays out of inference
    tokenizer.save_pretrained(out)
    from rro.train.progress import training_time

    record = write_train_record(config, kind, {**details, "log_history": trainer.state.log_history},
                                training_time(trainer))
    shutil.rmtree(out / "trainer", ignore_errors=True)  # optimizer states: large, and no longer needed
    return record
