"""Typed command configurations: one pydantic model per command, loadable from TOML and
overridable from the command line. Invalid values fail at load time, naming the field.

This is the one place a setting is declared (`Field(default=..., description=...)`): command-line
options, `--help`, TOML keys and `rro run` tables are derived from these models (`rro.cli_options`).
An environment's own settings live in its `EnvSpec.options` model and are merged in here, so that
every command takes them too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from rro.envs import base as envs
from rro.policy import BACKENDS
from rro.envs.base import Env, Task
from rro.jsonl import numbered_records, write_json_atomic


class ConfigError(ValueError):
    pass


# What a setting is to a run's identity, declared on the field (`json_schema_extra`). A setting
# without a mark identifies the run: an output folder is resumed, a finished pipeline stage skipped
# and a recording replayed only with the same value (`run_identity`). Marked ones do not, or less:
#   placement   where the run happens (workers, a shared database server) and how much of that
#               machine's memory it takes: ties nothing;
#   resumable   how much runs, in which pieces, on which engine (limit, tasks_per_batch, dtype, the
#               output folder itself): a folder may be resumed with another value, but a finished
#               pipeline stage with another value is another stage;
#   replayable  what a replay may change (rro.explore.replay): the rule's settings, not the sampling's.
PLACEMENT = {"placement": True}
RESUMABLE = {"resumable": True}
REPLAYABLE = {"replayable": True}
# The command-line flags of every command's output field.
OUTPUT = {"cli": ["--output", "-o"], **RESUMABLE}


def field_marks(field: FieldInfo) -> dict[str, Any]:
    """The marks declared on a field (`json_schema_extra`: run_wide, placement, cli flags, ...)."""
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


class StrictModel(BaseModel):
    # A misspelt field is an error, not silently ignored; inf and NaN are no setting's value (a NaN
    # margin compared false with everything, and was saved as null).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _environment_fields(reserved: set[str], run_wide_only: bool = False) -> dict[str, tuple[Any, FieldInfo]]:
    """Every installed environment's own settings (its `EnvSpec.options` model), as fields of the
    command configs: so they are options, TOML keys and `rro run` table keys like any other. Two
    environments may share a setting only when they declare it alike; an environment whose setting
    clashes with another's, or takes a `reserved` name (one of rro's own), is left out, with a warning."""
    fields: dict[str, tuple[Any, FieldInfo]] = {}
    for env_spec in envs.specs():
        own = env_spec.options.model_fields
        clashes = [name for name, field in own.items() if name in reserved or name in fields and (
            fields[name][0] != field.annotation
            or fields[name][1].get_default(call_default_factory=True) != field.get_default(call_default_factory=True))]
        if clashes:
            reason = f"its options {clashes} clash with rro's own settings or another environment's"
            warnings.warn(f"environment {env_spec.name} is left out: {reason}", stacklevel=2)
            envs.disable(env_spec.name, reason)
            continue
        for name, field in own.items():
            ENV_OPTIONS.setdefault(name, set()).add(env_spec.name)
            extra = field_marks(field)
            if run_wide_only and not extra.get("run_wide"):
                continue
            if name not in fields:
                shown = copy.copy(field)  # the environment's own model keeps its field as it is
                shown.json_schema_extra = {**extra, "panel": f"Options of {env_spec.name}"}
                fields[name] = (field.annotation, shown)
            else:
                owners = sorted(ENV_OPTIONS[name])
                fields[name][1].json_schema_extra["panel"] = f"Options of {', '.join(owners)}"
    return fields


# Setting name -> the environments that declare it.
ENV_OPTIONS: dict[str, set[str]] = {}


def _refuse_other_environments_settings(config: BaseModel) -> None:
    """A setting of another environment than the selected one may not be set (to other than its
    default): it would be silently ignored."""
    try:
        env_spec = envs.spec(config.env)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    fields = type(config).model_fields
    for name in ENV_OPTIONS:
        if name in fields and name not in env_spec.options.model_fields \
                and getattr(config, name) != fields[name].get_default(call_default_factory=True):
            raise ValueError(f"{name} is not a setting of {config.env}")


class _TaskSelection(StrictModel):
    env: str = Field(default=envs.DEFAULT, description="The environment (`rro envs` lists them).")
    split: str = Field(
        default="test", description="Which tasks: train, test, all, or another of the environment's splits (`rro envs`).")
    limit: int | None = Field(default=None, ge=1, description="Only the first N tasks of the split.",
                              json_schema_extra=RESUMABLE)
    max_steps: int = Field(default=10, ge=1, description="Turns before an episode is cut and scores 0.")
    max_invalid_turns: int = Field(
        default=3, ge=0, description="End an episode after this many consecutive turns without a valid action (0 = never).")

    @model_validator(mode="after")
    def _settings_of_the_env(self):
        _refuse_other_environments_settings(self)
        env_spec = envs.spec(self.env)
        if self.split not in env_spec.splits:
            raise ValueError(f"{self.env} has no split {self.split!r}; choose one of {', '.join(env_spec.splits)}")
        env_spec.options.model_validate(self.env_options())  # its own validators, if it has any
        return self

    def env_options(self) -> dict[str, Any]:
        """The selected environment's own settings."""
        return {name: getattr(self, name) for name in envs.spec(self.env).options.model_fields}

    def env_options_json(self) -> dict[str, Any]:
        """The selected environment's own settings as JSON values (summaries and reports record them)."""
        return self.model_dump(mode="json", include=set(envs.spec(self.env).options.model_fields))

    def env_options_to_name(self) -> dict[str, Any]:
        """The environment's settings worth naming beside a result: the ones changed from their
        default, and the run-wide ones that say what ran (InterCode-SQL's scheme and backend), not
        where it ran (placement: a MariaDB server's port on a SQLite run says nothing)."""
        what_ran = _marked(self, "run_wide") - _marked(self, "placement")
        fields = type(self).model_fields
        return {name: value for name, value in self.env_options().items()
                if name in what_ran or value != fields[name].get_default(call_default_factory=True)}

    def tasks(self) -> list[Task]:
        env_spec = envs.spec(self.env)
        options = {name: value for name, value in self.env_options().items() if name in env_spec.task_options}
        tasks = env_spec.load_tasks(split=self.split, **options)
        return tasks[: self.limit] if self.limit else tasks

    def make_env(self) -> Env:
        env_spec = envs.spec(self.env)
        return env_spec.make(**{name: value for name, value in self.env_options().items()
                                if name not in env_spec.task_options})


def _device_name(device: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", device):
        raise ValueError("choose auto, cpu, cuda, cuda:N, mps or xpu")
    return device


class PolicyConfig(StrictModel):
    """Which model writes the agent's turns, where it runs, and how it samples."""

    model: str = Field(default="smollm2-135m",
                       description="Model: a named model (smollm2-135m), a checkpoint folder or a transformers id.")
    policy_backend: Literal[tuple(BACKENDS)] = Field(  # type: ignore[valid-type]
        default="hf", description="hf (transformers), openai (an OpenAI-compatible server) or vllm (in-process vLLM engine).",
        json_schema_extra=RESUMABLE)
    base_url: str | None = Field(
        default=None, description="The server for --policy-backend openai, e.g. http://127.0.0.1:8000/v1.",
        json_schema_extra=RESUMABLE)
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0.0, le=1.0,
        description="vllm backend: the share of the device's memory vLLM reserves for weights and KV cache "
                    "(on CPU: of the NUMA node's memory). Default 0.9 on a GPU, 0.3 on CPU.",
        # Placement: the right share depends on the machine (float32 weights, on a CPU without native
        # bf16, take twice bf16's), so a run resumed on another machine may need another one.
        json_schema_extra=PLACEMENT)
    max_model_len: int | None = Field(
        default=None, ge=32,
        description="vllm backend: the longest prompt + completion in tokens; None = the model's context "
                    "length. Lower it when a long-context 2B-7B model's KV cache does not fit.",
        json_schema_extra=RESUMABLE)
    enforce_eager: bool = Field(
        default=False,
        description="vllm backend: skip CUDA graph capture (starts faster, decodes slower; no effect on CPU).",
        json_schema_extra=RESUMABLE)
    kv_block_size: int | None = Field(
        default=None, ge=1,
        description="vllm backend: tokens per KV-cache block, the granularity of prefix-cache hits; "
                    "None = 32 on CPU (vLLM's CPU default of 128 made exploration 1.3-1.7x slower), vLLM's default on a GPU.",
        json_schema_extra=RESUMABLE)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights' type; auto: bf16 on GPUs and on CPUs with native bf16 (avx512_bf16/AMX), "
                    "float32 on other CPUs (emulated bf16 is ~80x slower there); hf and vllm backends.",
        json_schema_extra=RESUMABLE)
    device: Annotated[str, AfterValidator(_device_name)] = Field(
        default="auto", description="Where the model runs: auto, cpu, cuda, cuda:1, ... (or mps, xpu).",
        json_schema_extra=RESUMABLE)
    max_batch_size: int | None = Field(
        default=None, ge=1, description="Most conversations per forward pass (default: all at once).",
        json_schema_extra=RESUMABLE)
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
        from rro.policy import BACKENDS, load_policy

        backend = BACKENDS[self.policy_backend]
        for name in backend.required:
            if not getattr(self, name):
                raise ConfigError(f"policy_backend = {self.policy_backend!r} needs {name}: "
                                  f"{type(self).model_fields[name].description}")
        return load_policy(self.model, self.policy_backend, **{name: getattr(self, name) for name in backend.settings})


TaskSelection = create_model(
    "TaskSelection", __base__=_TaskSelection, __module__=__name__,
    __doc__="""Which tasks of which environment, and how the environment runs them: the general
    settings, and every installed environment's own (InterCode-SQL's scheme, dbs, hardness,
    include_empty_dbs and backend; a plug-in's), each refused while another environment is selected.""",
    **_environment_fields(reserved=set(_TaskSelection.model_fields) | set(PolicyConfig.model_fields)))


class ReportToConfig(StrictModel):
    """Where a command's running figures go: training's loss curves, exploration's and evaluation's
    metrics (rro.tracking). Like placement, it changes where figures are sent, never what a run
    produces, so a finished run may be resumed with another value."""

    report_to: Literal["none", "tensorboard", "wandb"] = Field(default="none", json_schema_extra=PLACEMENT, description=(
        "Where the running figures go: tensorboard (event files under the output folder; "
        "pip install 'rro[tensorboard]'), wandb, or none."))


class WorkersConfig(StrictModel):
    """Where tasks run: in this process, or spread over Ray actors (rro.workers)."""

    workers: int = Field(default=1, ge=1, description=(
        "Processes that run chunks of tasks, each with its own policy and environments. 1 runs in this "
        "process (Ray is not imported); more start Ray actors (pip install 'rro[ray]')."), json_schema_extra=PLACEMENT)
    ray_address: str | None = Field(default=None, description=(
        "The Ray cluster to join (e.g. 10.0.0.1:6379, as printed by `ray start --head`); unset starts a "
        "local Ray instance on this machine. Only used with workers > 1."), json_schema_extra=PLACEMENT)
    num_gpus: float = Field(default=0.0, ge=0.0, description=(
        "GPUs each worker holds (1 for one model per GPU; 0 on CPU machines, where the CPU cores are split "
        "evenly between the workers). Only used with workers > 1."), json_schema_extra=PLACEMENT)


class EvalConfig(TaskSelection, PolicyConfig, WorkersConfig, ReportToConfig):
    policy: Literal["model", "expert"] = Field(default="model", description="model, or expert (the oracle; no model needed).")
    tasks_per_batch: int = Field(default=64, ge=1, description="Episodes run together (and environments open at once).",
                                 json_schema_extra=RESUMABLE)
    output: Path = Field(description="Output folder (episodes.jsonl, summary.json).", json_schema_extra=OUTPUT)

    def unused_settings(self) -> set[str]:
        """The policy's settings when the expert plays: they change nothing (rro.config.run_identity)."""
        return set(PolicyConfig.model_fields) if self.policy == "expert" else set()


class ExpertsConfig(TaskSelection):
    split: str = Field(
        default="train", description="Which tasks: train, test, all, or another of the environment's splits (`rro envs`).")
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


class ExploreConfig(TaskSelection, PolicyConfig, WorkersConfig, ReportToConfig):
    """`rro explore`: collect preference pairs with one strategy. Defaults follow docs/design.md ("The rule")."""

    split: str = Field(
        default="train", description="Which tasks: train, test, all, or another of the environment's splits (`rro envs`).")
    strategy: Literal["rising", "fixed", "ipr", "outcome"] = Field(
        default="rising", description="rising (RRO), fixed (K candidates every step), ipr or outcome.",
        json_schema_extra=REPLAYABLE)
    rollouts: int = Field(default=5, ge=1, description="N: rollouts per value estimate.")
    max_candidates: int = Field(default=5, ge=1, description="K: most candidates per step (rising), or all of them (fixed).",
                                json_schema_extra=REPLAYABLE)
    temperature: float = Field(default=1.0, ge=0.0, description="T_explore: the temperature candidates are drawn at.")
    rollout_temperature: float = Field(default=1.0, ge=0.0, description="T_rollout: the temperature rollouts continue at.")
    margin: float = Field(default=0.0, description="A candidate rises when its Q > the previous value + margin.",
                          json_schema_extra=REPLAYABLE)
    # On by default since the ablations (docs/results/ablations.md): without it a policy that already succeeds
    # draws all K candidates wherever it does. Runs saved before the rule existed were strict.
    rise_at_max: bool = Field(default=True, json_schema_extra={"when_absent": False, **REPLAYABLE}, description=(
        "The ceiling rule: a candidate whose Q equals the top of the environment's reward_range also counts as "
        "rising, whatever the previous value (nothing can exceed it). Off: only q > prev + margin rises."))
    anchor: Literal["policy", "expert"] = Field(default="policy", description=(
        "Which states rising and fixed explore: 'policy' walks on from each step's chosen candidate; 'expert' "
        "explores the expert trajectory's prefixes, the bar at each being Q(previous prefix, expert action)."),
        json_schema_extra=REPLAYABLE)
    pair_gap: float = Field(default=0.01, ge=0.0, description="Pair two candidates when their Qs differ by at least this.",
                            json_schema_extra=REPLAYABLE)
    prev0: Literal["value", "zero"] = Field(
        default="value", description="What the first step must rise above: the start state's value, or zero.",
        json_schema_extra=REPLAYABLE)
    on_no_rise: Literal["continue", "stop"] = Field(
        default="continue", description="When no candidate rises: continue from the best, or stop the task.",
        json_schema_extra=REPLAYABLE)
    tau: float = Field(default=0.0, ge=0.0, description="ipr/outcome: pair when the expert is better by more than tau.",
                       json_schema_extra=REPLAYABLE)
    # Decisions stay the same: a candidate is only cut once its remaining rollouts cannot change them.
    adaptive: bool = Field(default=False, description="Stop a candidate's rollouts once it cannot rise.",
                           json_schema_extra=REPLAYABLE)
    replay_from: Path | None = Field(default=None, description=(
        "Sample nothing: replay a finished fixed, expert-anchored exploration of the same model and tasks with at "
        "least these K and the same N, under this strategy's settings (rro.explore.replay). Expert anchor, or ipr."),
        json_schema_extra=REPLAYABLE)
    tasks_per_batch: int = Field(default=8, ge=1, description="Tasks explored together (one resumable chunk).",
                                 json_schema_extra=RESUMABLE)
    output: Path = Field(description="Output folder (pairs.jsonl, walks.jsonl, steps.jsonl, stats.json).",
                         json_schema_extra=OUTPUT)

    @model_validator(mode="after")
    def _anchor_of_a_walk(self):
        if self.anchor == "expert" and self.strategy not in ("rising", "fixed"):
            raise ValueError(f"anchor = 'expert' applies to the rising and fixed strategies, not {self.strategy!r} "
                             "(ipr already walks the expert trajectory)")
        if self.replay_from is not None and self.strategy == "outcome":
            raise ValueError("replay_from cannot replay outcome: it samples whole trajectories, not candidates "
                             "at the expert's prefixes")
        if self.replay_from is not None and self.strategy != "ipr" and self.anchor != "expert":
            raise ValueError("replay_from replays expert-anchored explorations only (anchor = 'expert'): with the "
                             "policy anchor the states depend on the candidates chosen")
        return self


def _marked(config: BaseModel, mark: str) -> set[str]:
    return {name for name, field in type(config).model_fields.items() if field_marks(field).get(mark)}


def run_identity(config: BaseModel, *, resumed: bool = False, replayed: bool = False) -> tuple[str, ...]:
    """The settings that identify the run `config` describes, derived from its fields' marks (see
    PLACEMENT above): every setting but where it runs (placement), other environments' own settings
    (every installed environment adds its own to every command) and settings the config leaves
    unused (`unused_settings`, e.g. the policy's when the expert plays). An output folder being
    `resumed` is tied by fewer (not the resumable ones); a recording being `replayed` by fewer still
    (not the replayable ones either)."""
    ignored = _marked(config, "placement") | set(getattr(config, "unused_settings", set)())
    if isinstance(config, _TaskSelection):
        ignored |= set(ENV_OPTIONS) - set(config.env_options())
    if resumed or replayed:
        ignored |= _marked(config, "resumable")
    if replayed:
        ignored |= _marked(config, "replayable")
    return tuple(name for name in type(config).model_fields if name not in ignored)


def value_when_absent(field: FieldInfo) -> Any:
    """What a saved run that lacks a setting ran with: the setting's default, unless the default
    changed after the setting was added (`json_schema_extra={"when_absent": ...}`)."""
    extra = field_marks(field)
    return extra["when_absent"] if "when_absent" in extra else field.get_default(call_default_factory=True)


def settings_digest(config: BaseModel, identity: dict[str, Any]) -> str:
    """A short digest of the settings that identify an output folder, for every record line to
    carry. Settings at the value a run that lacked them ran with are left out, so a setting that
    rro gains later does not change the digest of the runs made before it."""
    fields = type(config).model_fields
    meaningful = {key: value for key, value in identity.items() if value != value_when_absent(fields[key])}
    return hashlib.sha256(json.dumps(meaningful, sort_keys=True).encode()).hexdigest()[:16]


def guard_output_dir(config: BaseModel, out: Path, records: tuple[str, ...] = ()) -> str:
    """Refuse to mix runs: `out` may only be reused (resumed) with the same values of the settings
    that identify a resumed run (`run_identity`), as its `config.json` says and as every line of its
    `records` files says (each line carries the digest of these settings: rro.jsonl), so that a
    deleted or replaced config.json cannot let records of two settings meet. Both are checked
    before `config` is saved there. Returns the digest that the lines written now must carry."""
    keys = run_identity(config, resumed=True)
    saved_path = out / "config.json"
    dumped = config.model_dump(mode="json")  # paths as strings, as they are saved
    identity = {key: dumped[key] for key in keys}
    had_config = saved_path.exists()
    if had_config:
        try:
            saved = json.loads(saved_path.read_text(encoding="utf-8"))
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            raise ConfigError(f"{saved_path} is unreadable ({err}): delete it and rerun (the records in {out} "
                              "carry their settings, so a rerun with other settings is still refused)") from None
        # A setting rro gained after the run was saved counts as what the run did without it.
        defaults = {k: value_when_absent(type(config).model_fields[k]) for k in keys}
        saved = {k: saved.get(k, defaults[k]) for k in keys}
        changed = {k: (saved[k], v) for k, v in identity.items() if saved[k] != v}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ConfigError(f"{out} holds a run with different settings ({details}); use another output folder")
    digest = settings_digest(config, identity)
    for name in records:  # every line readable and of these settings (lines from before digests: if config.json vouches)
        for _line in numbered_records(out / name, settings=digest, unstamped=had_config):
            pass
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(saved_path, json.loads(config.model_dump_json()))
    return digest


class TrainConfig(ReportToConfig):
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
    pairs_sample: int | None = Field(default=None, ge=1, description=(
        "Train on a random sample of this many pairs (seeded by `seed`; all of them when there are fewer), "
        "spread over every task instead of the first ones as `limit` takes them."))


class _PipelineConfig(StrictModel):
    """`rro run`: experts -> sft -> eval -> (explore -> dpo -> eval) per strategy and iteration.

    The top-level fields are shared by every stage; each stage's table (`[sft]`, `[eval]`, ...) takes
    that command's own fields. Fields that the pipeline wires itself (models, data, outputs, and the
    environment's run-wide settings such as InterCode-SQL's backend and scheme) are refused in the
    tables.
    """

    output: Path = Field(description="The run directory.", json_schema_extra=OUTPUT)
    model: str = Field(default="smollm2-135m", description="Where SFT starts.")
    env: str = Field(default=envs.DEFAULT, description="The environment (`rro envs` lists them).")
    strategies: list[Literal["rising", "fixed", "ipr", "outcome"]] = Field(
        default_factory=lambda: ["rising"], min_length=1, description="The exploration strategies compared.")
    iterations: int = Field(default=1, ge=1, description="explore -> dpo -> eval again from the newest model, as IPR.")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(default="none", description=(
        "Where every stage's running figures go (training's losses, exploration's and evaluation's metrics): "
        "tensorboard (tensorboard --logdir RUN shows them all), wandb, or none."))
    experts: dict[str, Any] = Field(default_factory=dict, description="`rro data experts` settings.")
    sft: dict[str, Any] = Field(default_factory=dict, description="`rro sft` settings.")
    eval: dict[str, Any] = Field(default_factory=dict, description="`rro eval` settings (both evaluations).")
    explore: dict[str, Any] = Field(default_factory=dict, description="`rro explore` settings.")
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "Named methods beside `strategies`: [variants.NAME] holds a `strategy` and the [explore] settings that "
        "differ for it (e.g. [variants.rising-expert] strategy = 'rising', anchor = 'expert'). Each runs "
        "explore -> dpo -> eval from the same model as the strategies, in RUN/NAME/, reported as NAME."))
    dpo: dict[str, Any] = Field(default_factory=dict, description="`rro dpo` settings.")
    equal_pairs: bool = Field(default=False, description=(
        "Also train every method's DPO on the same number of pairs, the fewest any method found (a seeded "
        "sample of each method's own pairs), and evaluate it as METHOD-equal: pair quality apart from pair count. "
        "The arm evaluates its SFT model again first (sft-equal) and is paired against that."))

    @model_validator(mode="after")
    def _settings_of_the_env(self):
        _refuse_other_environments_settings(self)
        return self

    def run_wide_options(self) -> dict[str, Any]:
        """The selected environment's settings that hold for the whole run (InterCode-SQL: backend
        and scheme): the pipeline gives them to every stage, and the stage tables may not set them."""
        fields = type(self).model_fields
        return {name: getattr(self, name) for name in envs.spec(self.env).options.model_fields if name in fields}


PipelineConfig = create_model(
    "PipelineConfig", __base__=_PipelineConfig, __module__=__name__, __doc__=_PipelineConfig.__doc__,
    **_environment_fields(reserved=set(_PipelineConfig.model_fields), run_wide_only=True))



class PlayConfig(TaskSelection):
    """`rro play`: one task by hand."""

    split: str = Field(default="all", description="The split the task is in.")
    task: str = Field(description="The task's id, as the environment names it (the `task_id` field of episodes.jsonl).")


class ReportConfig(StrictModel):
    """`rro report`: tables and plots of pipeline runs."""

    runs: list[Path] = Field(default_factory=list, description="Run directories of `rro run`.")
    output: Path = Field(description="Folder for results.md, results.csv and the plots.", json_schema_extra=OUTPUT)
    resamples: int = Field(default=2000, ge=1, description="Bootstrap resamples for the confidence intervals.")
    competence: list[Path] = Field(default_factory=list, description=(
        "`rro explore` folders (rising/fixed, prev0 = value) of the same tasks explored from checkpoints of "
        "increasing competence: adds competence.png and competence.json (cost against mean V(s0))."))

    @model_validator(mode="after")
    def _something_to_report(self):
        if not self.runs and not self.competence:
            raise ValueError("name at least one run directory (or --competence explorations)")
        return self


class PairsExportConfig(StrictModel):
    """`rro pairs export`: the pairs of explorations as a Hugging Face dataset, with a dataset card."""

    sources: list[Path] = Field(min_length=1, description=(
        "Exploration folders (rro explore's output) or run directories (rro run's: every exploration of the run)."))
    output: Path = Field(description="A new folder for the dataset (README.md card, data/*.parquet, arrow/).",
                         json_schema_extra=OUTPUT)
    push_to_hub: str | None = Field(default=None, description=(
        "Also upload the card and the Parquet file to this Hugging Face dataset repository (user/name); "
        "needs the Hub and a token (hf auth login)."))


def _check_environment_setting_names() -> None:
    """An environment's setting may not take the name of a command's own setting either (the
    command's wins): such an environment is left out, with a warning."""
    own: set[str] = set()
    for model in (EvalConfig, ExpertsConfig, ExploreConfig, PlayConfig):
        own |= set(model.__annotations__)
    for name, owners in ENV_OPTIONS.items():
        for env_name in sorted(owners & set(envs.names()) if name in own else ()):
            reason = f"its option {name!r} has the name of a setting of rro's own"
            warnings.warn(f"environment {env_name} is left out: {reason}", stacklevel=2)
            envs.disable(env_name, reason)


_check_environment_setting_names()
