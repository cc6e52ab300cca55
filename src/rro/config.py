"""Typed command configurations: one pydantic model per command, loadable from TOML and
overridable from the command line. Invalid values fail at load time, naming the field."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rro.envs.base import Env, Task, make, spec


class ConfigError(ValueError):
    pass


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class TaskSelection(StrictModel):
    """Which tasks of which environment, and how the environment runs them. Some settings belong
    to one environment (scheme, dbs, hardness, include_empty_dbs and backend: InterCode-SQL's)."""

    env: str = "intercode-sql"
    split: Literal["train", "dev", "test", "all"] = "test"  # dev: WebShop's goals 500-1499
    scheme: Literal["by-query", "by-db", "records"] = "by-query"
    dbs: list[str] = Field(default_factory=list)
    hardness: list[Literal["easy", "medium", "hard", "extra"]] = Field(default_factory=list)
    include_empty_dbs: bool = False
    limit: int | None = Field(default=None, ge=1)
    backend: Literal["sqlite", "mariadb"] = "sqlite"
    max_steps: int = Field(default=10, ge=1)
    # End an episode after this many consecutive turns without a valid action (0 = never).
    max_invalid_turns: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _options_of_the_env(self):
        try:
            env_spec = spec(self.env)
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        taken = set(env_spec.task_options) | set(env_spec.env_options)
        for name in _ENV_SPECIFIC:
            if name not in taken and getattr(self, name) != type(self).model_fields[name].get_default(call_default_factory=True):
                raise ValueError(f"{name} is not a setting of {self.env}")
        return self

    def tasks(self) -> list[Task]:
        env_spec = spec(self.env)
        options = {name: getattr(self, name) for name in env_spec.task_options}
        tasks = env_spec.load_tasks(split=self.split, **options)
        return tasks[: self.limit] if self.limit else tasks

    def make_env(self) -> Env:
        env_spec = spec(self.env)
        return make(self.env, **{name: getattr(self, name) for name in env_spec.env_options})


_ENV_SPECIFIC = ("scheme", "dbs", "hardness", "include_empty_dbs", "backend")


class PolicyConfig(StrictModel):
    """Which model writes the agent's turns, where it runs, and how it samples."""

    model: str = "smollm2-135m"  # a named model, a local checkpoint, or a transformers model id
    policy_backend: Literal["hf", "openai", "vllm"] = "hf"
    base_url: str | None = None  # the OpenAI-compatible server, for policy_backend = "openai"
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0.0, le=1.0,
        description="vllm backend: the share of the device's memory vLLM reserves for weights and KV cache "
                    "(on CPU: of the NUMA node's memory). Default 0.9 on a GPU, 0.3 on CPU.")
    max_model_len: int | None = Field(
        default=None, ge=32,
        description="vllm backend: the longest prompt + completion in tokens; None = the model's context "
                    "length. Lower it when a long-context 2B-7B model's KV cache does not fit.")
    enforce_eager: bool = Field(
        default=False,
        description="vllm backend: skip CUDA graph capture (starts faster, decodes slower; no effect on CPU).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    max_batch_size: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)  # 0 = greedy
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=256, ge=1)
    seed: int = 0
    # In-context examples in the first message; None = 1 for a base model, 0 for a checkpoint
    # trained by rro (it learnt the format).
    icl_shots: int | None = Field(default=None, ge=0, le=1)

    def resolved_icl_shots(self) -> int:
        if self.icl_shots is not None:
            return self.icl_shots
        return 0 if (Path(self.model) / "rro-train.json").exists() else 1

    def load_policy(self):
        from rro.policy import load_policy

        if self.policy_backend == "openai":
            if not self.base_url:
                raise ConfigError("policy_backend = 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
            return load_policy(self.model, "openai", base_url=self.base_url)
        if self.policy_backend == "vllm":
            return load_policy(self.model, "vllm", dtype=self.dtype, gpu_memory_utilization=self.gpu_memory_utilization,
                               max_model_len=self.max_model_len, enforce_eager=self.enforce_eager, seed=self.seed)
        return load_policy(self.model, "hf", dtype=self.dtype, device=self.device, max_batch_size=self.max_batch_size)


class EvalConfig(TaskSelection, PolicyConfig):
    policy: Literal["model", "expert"] = "model"
    tasks_per_batch: int = Field(default=64, ge=1)  # episodes run together (and environments open at once)
    output: Path


class ExpertsConfig(TaskSelection):
    split: Literal["train", "dev", "test", "all"] = "train"
    # Keep trajectories scoring at least this. WebShop's oracle scores below 1.0 when search misses
    # the goal product; lower it there to train on near misses as well.
    min_reward: float = 1.0
    output: Path


Config = TypeVar("Config", bound=BaseModel)


def describe_error(error: ValidationError, table: str | None = None) -> str:
    """One line per problem, naming the field (inside `table` when given: `sft.learning_rate`)."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in ([table] if table else []) + list(problem["loc"])) or "(config)"
        lines.append(f"  {field}: {problem['msg']} (got {problem.get('input')!r})")
    return "invalid configuration:\n" + "\n".join(lines)


def load_config(cls: type[Config], path: Path | None = None, **overrides: Any) -> Config:
    """Build `cls` from a TOML file (optional) and command-line overrides (None = not given)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from None
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_error(err)) from None


class ExploreConfig(TaskSelection, PolicyConfig):
    """`rro explore`: collect preference pairs with one strategy. Defaults follow DESIGN §2."""

    split: Literal["train", "dev", "test", "all"] = "train"
    strategy: Literal["rising", "fixed", "ipr", "outcome"] = "rising"
    rollouts: int = Field(default=5, ge=1)  # N: rollouts per Q (or V) estimate
    max_candidates: int = Field(default=5, ge=1)  # K_max for rising, K for fixed
    temperature: float = Field(default=1.0, ge=0.0)  # T_explore: how candidates are drawn
    rollout_temperature: float = Field(default=1.0, ge=0.0)  # T_rollout: how rollouts continue
    margin: float = 0.0  # rising means q > prev + margin
    pair_gap: float = Field(default=0.01, ge=0.0)  # pair when q(best) - q(other) >= pair_gap
    prev0: Literal["value", "zero"] = "value"  # the value the first step must rise above
    on_no_rise: Literal["continue", "stop"] = "continue"
    tau: float = Field(default=0.0, ge=0.0)  # ipr/outcome: pair when the expert is better by more than tau
    # Stop a rising candidate's rollouts once it can no longer rise (decisions stay the same).
    adaptive: bool = False
    tasks_per_batch: int = Field(default=8, ge=1)  # tasks explored together (one resumable chunk)
    output: Path


def guard_output_dir(config: BaseModel, out: Path, keys: tuple[str, ...]) -> None:
    """Refuse to mix runs: `out` may only be reused (resumed) with the same values of `keys`."""
    saved_path = out / "config.json"
    dumped = config.model_dump(mode="json")  # paths as strings, as they are saved
    identity = {key: dumped[key] for key in keys}
    if saved_path.exists():
        saved = json.loads(saved_path.read_text())
        changed = {k: (saved.get(k), v) for k, v in identity.items() if saved.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ConfigError(f"{out} holds a run with different settings ({details}); use another output folder")
    out.mkdir(parents=True, exist_ok=True)
    tmp = saved_path.with_suffix(".tmp")
    tmp.write_text(config.model_dump_json(indent=2))
    tmp.replace(saved_path)


class TrainConfig(StrictModel):
    """What `rro sft` and `rro dpo` share. Defaults suit a 135M model on 2 CPU cores."""

    model: str = "smollm2-135m"  # where training starts: a named model, a checkpoint or a model id
    output: Path  # the trained checkpoint (an ordinary transformers folder)
    limit: int | None = Field(default=None, ge=1)  # train on the first N records only
    epochs: float = Field(default=2.0, gt=0)
    learning_rate: float = Field(default=1e-4, gt=0)
    batch_size: int = Field(default=2, ge=1)  # per device
    gradient_accumulation_steps: int = Field(default=4, ge=1)
    warmup_steps: float = Field(default=0.05, ge=0)  # a fraction of all steps when below 1
    max_length: int = Field(default=1024, ge=32)  # tokens of one record (prompt + completion)
    lora: bool = False  # full fine-tuning by default; LoRA adapters are merged into the saved weights
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    # auto: bf16 autocast (fp32 master weights) on GPUs and CPUs with native bf16, else fp32.
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    # Recompute activations in the backward pass: less memory (set it for billion-parameter models),
    # but 1.1-1.2x slower for a 135M model on 2 CPU cores (bench/sft_throughput.py).
    activation_checkpointing: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    save_steps: int = Field(default=20, ge=1)  # optimizer steps between resumable checkpoints
    logging_steps: int = Field(default=5, ge=1)
    report_to: Literal["none", "tensorboard", "wandb"] = "none"
    seed: int = 0


class SftConfig(TrainConfig):
    """`rro sft`: supervised fine-tuning on expert trajectories, loss on assistant turns only."""

    data: list[Path] = Field(min_length=1)  # JSONL files with a `messages` list per line (rro data experts)


class DpoConfig(TrainConfig):
    """`rro dpo`: DPO on preference pairs; the reference model is the starting (SFT) model."""

    pairs: list[Path] = Field(min_length=1)  # pairs.jsonl files (rro explore); step and outcome pairs mix
    epochs: float = Field(default=2.0, gt=0)
    learning_rate: float = Field(default=1e-5, gt=0)
    beta: float = Field(default=0.1, gt=0)
    # Weight of an SFT (NLL) term on the chosen side, as IPR's mixture loss; 0 = plain DPO.
    sft_weight: float = Field(default=0.0, ge=0)


class PipelineConfig(StrictModel):
    """`rro run`: experts -> sft -> eval -> (explore -> dpo -> eval) per strategy and iteration.

    The top-level fields are shared by every stage; each stage's table (`[sft]`, `[eval]`, ...) takes
    that command's own fields. Fields that the pipeline wires itself (models, data, outputs) are
    refused in the tables.
    """

    output: Path  # the run directory
    model: str = "smollm2-135m"  # where SFT starts
    env: str = "intercode-sql"
    backend: Literal["sqlite", "mariadb"] = "sqlite"
    scheme: Literal["by-query", "by-db", "records"] = "by-query"
    strategies: list[Literal["rising", "fixed", "ipr", "outcome"]] = Field(default_factory=lambda: ["rising"], min_length=1)
    iterations: int = Field(default=1, ge=1)  # explore -> dpo -> eval again from the newest model, as IPR
    experts: dict[str, Any] = Field(default_factory=dict)
    sft: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)
    explore: dict[str, Any] = Field(default_factory=dict)
    dpo: dict[str, Any] = Field(default_factory=dict)
