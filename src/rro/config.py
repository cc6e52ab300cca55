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


# The command-line flags of every command's output field.
OUTPUT = {"cli": ["--output", "-o"]}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class TaskSelection(StrictModel):
    """Which tasks of which environment, and how the environment runs them. Some settings belong
    to one environment (scheme, dbs, hardness, include_empty_dbs and backend: InterCode-SQL's)."""

    env: str = Field(default="intercode-sql", description="The environment (`rro envs` lists them).")
    split: Literal["train", "dev", "test", "all"] = Field(
        default="test", description="Which tasks: train, test, all, or dev (WebShop's goals 500-1499).")
    scheme: Literal["by-query", "by-db", "records"] = Field(
        default="by-query", description="InterCode-SQL: by-query (leak-free), by-db, or records (InterCode's order; leaky).")
    dbs: list[str] = Field(default_factory=list, description="InterCode-SQL: only tasks on this database.",
                           json_schema_extra={"cli": ["--db"]})
    hardness: list[Literal["easy", "medium", "hard", "extra"]] = Field(
        default_factory=list, description="InterCode-SQL: only tasks of this hardness.")
    include_empty_dbs: bool = Field(
        default=False, description="InterCode-SQL: keep wta_1, whose tables hold no rows (every gold result is empty).")
    limit: int | None = Field(default=None, ge=1, description="Only the first N tasks of the split.")
    backend: Literal["sqlite", "mariadb"] = Field(
        default="sqlite", description="InterCode-SQL: sqlite (embedded) or mariadb (faithful; needs `rro db up`).")
    max_steps: int = Field(default=10, ge=1, description="Turns before an episode is cut and scores 0.")
    max_invalid_turns: int = Field(
        default=3, ge=0, description="End an episode after this many consecutive turns without a valid action (0 = never).")

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

    model: str = Field(default="smollm2-135m",
                       description="Model: a named model (smollm2-135m), a checkpoint folder or a transformers id.")
    policy_backend: Literal["hf", "openai"] = Field(
        default="hf", description="hf (transformers) or openai (an OpenAI-compatible server).")
    base_url: str | None = Field(
        default=None, description="The server for --policy-backend openai, e.g. http://127.0.0.1:8000/v1.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights' type; auto: bf16 where the hardware has it.")
    device: str = Field(default="auto", description="Where the model runs: auto, cpu, cuda, cuda:1, ...")
    max_batch_size: int | None = Field(
        default=None, ge=1, description="Most conversations per forward pass (default: all at once).")
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature; 0 = greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling's top-p.")
    max_new_tokens: int = Field(default=256, ge=1, description="Token limit of one agent turn.")
    seed: int = Field(default=0, description="Sampling seed.")
    # The format is learnt in training, so a trained checkpoint needs no example.
    icl_shots: int | None = Field(
        default=None, ge=0, le=1,
        description="In-context examples in the first message (default: 1 for a base model, 0 for an rro checkpoint).")

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
        return load_policy(self.model, "hf", dtype=self.dtype, device=self.device, max_batch_size=self.max_batch_size)


class EvalConfig(TaskSelection, PolicyConfig):
    policy: Literal["model", "expert"] = Field(default="model", description="model, or expert (the oracle; no model needed).")
    tasks_per_batch: int = Field(default=64, ge=1, description="Episodes run together (and environments open at once).")
    output: Path = Field(description="Output folder (episodes.jsonl, summary.json).", json_schema_extra=OUTPUT)


class ExpertsConfig(TaskSelection):
    split: Literal["train", "dev", "test", "all"] = Field(
        default="train", description="Which tasks: train, test, all, or dev (WebShop's goals 500-1499).")
    # WebShop's oracle scores below 1.0 when search misses the goal product; lower it there to train
    # on near misses as well.
    min_reward: float = Field(default=1.0, description="Keep trajectories scoring at least this.")
    output: Path = Field(description="Output JSONL (chat messages, one trajectory per line).", json_schema_extra=OUTPUT)


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

    split: Literal["train", "dev", "test", "all"] = Field(
        default="train", description="Which tasks: train, test, all, or dev (WebShop's goals 500-1499).")
    strategy: Literal["rising", "fixed", "ipr", "outcome"] = Field(
        default="rising", description="rising (RRO), fixed (K candidates every step), ipr or outcome.")
    rollouts: int = Field(default=5, ge=1, description="N: rollouts per value estimate.")
    max_candidates: int = Field(default=5, ge=1, description="K: most candidates per step (rising), or all of them (fixed).")
    temperature: float = Field(default=1.0, ge=0.0, description="T_explore: the temperature candidates are drawn at.")
    rollout_temperature: float = Field(default=1.0, ge=0.0, description="T_rollout: the temperature rollouts continue at.")
    margin: float = Field(default=0.0, description="A candidate rises when its Q > the previous value + margin.")
    pair_gap: float = Field(default=0.01, ge=0.0, description="Pair two candidates when their Qs differ by at least this.")
    prev0: Literal["value", "zero"] = Field(
        default="value", description="What the first step must rise above: the start state's value, or zero.")
    on_no_rise: Literal["continue", "stop"] = Field(
        default="continue", description="When no candidate rises: continue from the best, or stop the task.")
    tau: float = Field(default=0.0, ge=0.0, description="ipr/outcome: pair when the expert is better by more than tau.")
    # Decisions stay the same: a candidate is only cut once its remaining rollouts cannot change them.
    adaptive: bool = Field(default=False, description="Stop a candidate's rollouts once it cannot rise.")
    tasks_per_batch: int = Field(default=8, ge=1, description="Tasks explored together (one resumable chunk).")
    output: Path = Field(description="Output folder (pairs.jsonl, walks.jsonl, steps.jsonl, stats.json).",
                         json_schema_extra=OUTPUT)


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

    model: str = Field(default="smollm2-135m",
                       description="Where training starts: a named model (smollm2-135m), a checkpoint folder or a transformers id.")
    output: Path = Field(description="The checkpoint folder to write (an ordinary transformers folder).",
                         json_schema_extra=OUTPUT)
    limit: int | None = Field(default=None, ge=1, description="Train on the first N records only.")
    epochs: float = Field(default=2.0, gt=0, description="Passes over the data (may be fractional).")
    learning_rate: float = Field(default=1e-4, gt=0, description="Peak learning rate (cosine schedule).",
                                 json_schema_extra={"cli": ["--lr"]})
    batch_size: int = Field(default=2, ge=1, description="Records per device and step (gradient accumulation: --grad-accum).")
    gradient_accumulation_steps: int = Field(default=4, ge=1, description="Steps accumulated per optimizer update.",
                                             json_schema_extra={"cli": ["--grad-accum"]})
    warmup_steps: float = Field(default=0.05, ge=0, description="Warm-up steps; a fraction of all steps when below 1.")
    max_length: int = Field(default=1024, ge=32, description="Token limit of one record (prompt + completion).")
    lora: bool = Field(default=False, description="LoRA adapters (merged into the saved weights) or full fine-tuning.",
                       json_schema_extra={"cli": ["--lora/--full"]})
    lora_r: int = Field(default=16, ge=1, description="LoRA's rank.")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA's alpha.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto", description="auto: bf16 autocast (fp32 master weights) on GPUs and CPUs with native bf16, else fp32.")
    # Less memory (set it for billion-parameter models), but 1.1-1.2x slower for a 135M model on 2
    # CPU cores (bench/sft_throughput.py).
    activation_checkpointing: bool = Field(default=False, description="Recompute activations in the backward pass.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where to train.")
    save_steps: int = Field(default=20, ge=1, description="Optimizer steps between resumable checkpoints.")
    logging_steps: int = Field(default=5, ge=1, description="Optimizer steps between loss log lines.")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(default="none", description="Where loss curves go.")
    seed: int = Field(default=0, description="Training seed.")


class SftConfig(TrainConfig):
    """`rro sft`: supervised fine-tuning on expert trajectories, loss on assistant turns only."""

    data: list[Path] = Field(min_length=1, description="Expert trajectories (JSONL with `messages`, from rro data experts).")


class DpoConfig(TrainConfig):
    """`rro dpo`: DPO on preference pairs; the reference model is the starting (SFT) model."""

    model: str = Field(default="smollm2-135m",
                       description="The SFT checkpoint to start from; it is also the reference model.")
    pairs: list[Path] = Field(min_length=1, description="Preference pairs (pairs.jsonl from rro explore; step and outcome pairs mix).")
    epochs: float = Field(default=2.0, gt=0, description="Passes over the data (may be fractional).")
    learning_rate: float = Field(default=1e-5, gt=0, description="Peak learning rate (cosine schedule).",
                                 json_schema_extra={"cli": ["--lr"]})
    beta: float = Field(default=0.1, gt=0, description="DPO's beta.")
    sft_weight: float = Field(default=0.0, ge=0,
                              description="Weight of an SFT (NLL) term on the chosen side, as IPR's mixture loss; 0 = plain DPO.")


class PipelineConfig(StrictModel):
    """`rro run`: experts -> sft -> eval -> (explore -> dpo -> eval) per strategy and iteration.

    The top-level fields are shared by every stage; each stage's table (`[sft]`, `[eval]`, ...) takes
    that command's own fields. Fields that the pipeline wires itself (models, data, outputs) are
    refused in the tables.
    """

    output: Path = Field(description="The run directory.", json_schema_extra=OUTPUT)
    model: str = Field(default="smollm2-135m", description="Where SFT starts.")
    env: str = Field(default="intercode-sql", description="The environment (`rro envs` lists them).")
    backend: Literal["sqlite", "mariadb"] = Field(
        default="sqlite", description="InterCode-SQL: sqlite (embedded) or mariadb (faithful; needs `rro db up`).")
    scheme: Literal["by-query", "by-db", "records"] = Field(
        default="by-query", description="InterCode-SQL: by-query (leak-free), by-db, or records (InterCode's order; leaky).")
    strategies: list[Literal["rising", "fixed", "ipr", "outcome"]] = Field(
        default_factory=lambda: ["rising"], min_length=1, description="The exploration strategies compared.")
    iterations: int = Field(default=1, ge=1, description="explore -> dpo -> eval again from the newest model, as IPR.")
    experts: dict[str, Any] = Field(default_factory=dict, description="`rro data experts` settings.")
    sft: dict[str, Any] = Field(default_factory=dict, description="`rro sft` settings.")
    eval: dict[str, Any] = Field(default_factory=dict, description="`rro eval` settings (both evaluations).")
    explore: dict[str, Any] = Field(default_factory=dict, description="`rro explore` settings.")
    dpo: dict[str, Any] = Field(default_factory=dict, description="`rro dpo` settings.")


class PlayConfig(TaskSelection):
    """`rro play`: one task by hand."""

    task: int = Field(description="Task number (InterCode record index, WebShop goal index).")


class ReportConfig(StrictModel):
    """`rro report`: tables and plots of pipeline runs."""

    runs: list[Path] = Field(min_length=1, description="Run directories of `rro run`.")
    output: Path = Field(description="Folder for results.md, results.csv and the plots.", json_schema_extra=OUTPUT)
    resamples: int = Field(default=2000, ge=1, description="Bootstrap resamples for the confidence intervals.")
