"""The environment interface: tasks, step results, what an environment declares (`EnvSpec`), and
the registry that finds environments, built-in or installed from other packages.

An environment is deterministic given (task, action sequence): `reset(task)` starts a fresh
episode, `step(action)` applies one action. States are restored by replaying actions into a fresh
environment, never by sharing mutable state between episodes.

Environments are found through the Python entry point group `rro.envs`: a package declares
`[project.entry-points."rro.envs"] my-env = "my_package:SPEC"`, where `SPEC` is an `EnvSpec` (or a
list of them). The built-in environments are loaded the same way, from `BUILTIN` below, so this
module imports none of them.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Mapping, NamedTuple, Protocol, Sequence

from pydantic import BaseModel, ConfigDict

ENTRY_POINT_GROUP = "rro.envs"
# The built-in environments, as entry points of rro itself would name them.
BUILTIN = {
    "intercode-sql": "rro.envs.intercode_sql.spec:SPEC",
    "webshop": "rro.envs.webshop.spec:SPECS",
}
DEFAULT = "intercode-sql"  # the environment a command runs when none is named


@dataclass(frozen=True)
class Task:
    """One task: an id unique within its environment, the text the agent is given, and the
    environment-specific fields needed to run and score it (e.g. database and gold query)."""

    env: str
    id: str
    instruction: str
    fields: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class StepResult(NamedTuple):
    observation: str
    reward: float
    done: bool
    info: dict[str, Any]


class Env(Protocol):
    name: str

    def reset(self, task: Task) -> str:
        """Start an episode of `task`; return the first observation."""
        ...

    def step(self, action: str) -> StepResult:
        """Apply one parsed action. Never raises for bad actions: they become error observations."""
        ...

    def close(self) -> None: ...


class ParsedAction(NamedTuple):
    """What an environment's action parser makes of the text after `Action:` in an agent turn."""

    action: str | None  # what to execute; None when the text holds no valid action
    error: str | None = None  # why there is no action (the agent is shown it)
    trailing: str = ""  # text after the action: tolerated, but the turn is not well formed


def first_line_action(text: str) -> ParsedAction:
    """The default action parser: the first line after `Action:`, as written."""
    line, _, rest = text.strip().partition("\n")
    if not line.strip():
        return ParsedAction(None, "the action is empty")
    return ParsedAction(line.strip(), None, rest.strip())


@dataclass(frozen=True)
class Example:
    """A worked example, shown to a base model as real chat turns before its task: the first
    observation, then (agent turn, observation) pairs, the last observation None."""

    observation: str
    steps: tuple[tuple[str, str | None], ...]


class NoOptions(BaseModel):
    """The settings of an environment that has none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EnvSpec:
    """What an environment declares so that every rro command can run it (the plug-in contract)."""

    name: str
    make: Callable[..., Env]  # make(**environment options) -> a fresh environment
    load_tasks: Callable[..., list[Task]]  # load_tasks(split=..., **task options) -> tasks
    # An oracle that knows the task's answer: a generator that yields agent turns
    # ("Thought: ...\nAction: ...") and is sent each resulting observation.
    expert: Callable[[Task], Generator[str, str, None]]
    terminal_actions: frozenset[str]  # actions (lower case) that always end an episode, scored exactly
    instruction: str = ""  # what the agent is told before the task's first observation
    # How to write a valid turn: shown to the agent after a turn without a valid action.
    format_help: str = "Reply with 'Thought: <your reasoning>' and then 'Action: <your action>'."
    parse_action: Callable[[str], ParsedAction] = first_line_action  # the text after `Action:`
    example: Example | None = None  # one worked example for base models (icl_shots = 1)
    reward_range: tuple[float, float] = (-1.0, 1.0)  # bounds of an episode's final reward
    # The environment's own settings (a pydantic model with a default for every field): they become
    # fields of every command's config, `--options` and TOML keys. Fields named in `task_options`
    # go to load_tasks, the others to make. A field with json_schema_extra={"run_wide": True} is set
    # once for a whole `rro run` (at its top level), not per stage.
    options: type[BaseModel] = NoOptions
    task_options: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "test", "all")  # the splits load_tasks accepts
    # `rro data splits NAME`: (column names, rows of cell texts) describing the splits. None: one row
    # per split with its task count. May raise rro.fetch.DataError (data not fetched) or ValueError.
    split_table: Callable[[], tuple[Sequence[str], Sequence[Sequence[str]]]] | None = None
    # Commands of the environment's own, as command groups of `rro`: group name -> a function that
    # returns the group's typer.Typer app (called when the command line is built, so keep its
    # imports light). InterCode-SQL's `rro db up|down|status` are declared here.
    commands: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    # The files `rro data fetch` downloads and verifies (rro.fetch.RemoteFile records), if any.
    data_files: Callable[[], Sequence[Any]] = tuple
    description: str = ""  # one line for `rro envs`
    # The licence of the data the tasks come from, as a Hugging Face Hub licence id ("mit",
    # "cc-by-sa-4.0", ...; "unknown" when undeclared), and a line saying whose data it is: both go
    # into the dataset card of exported pairs (`rro pairs export`), whose prompts quote that data.
    data_license: str = "unknown"
    data_license_note: str = ""


@dataclass
class _Registry:
    specs: dict[str, EnvSpec] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # name -> where it came from
    broken: dict[str, str] = field(default_factory=dict)  # entry point -> why it could not load
    loaded: bool = False


_REGISTRY = _Registry()
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def register(env_spec: EnvSpec, origin: str = "registered in code") -> None:
    """Add an environment (entry points do this at start-up; tests may call it directly)."""
    problems = _problems(env_spec)
    if problems:
        raise ValueError(f"environment {env_spec.name!r}: " + "; ".join(problems))
    _REGISTRY.specs[env_spec.name] = env_spec
    _REGISTRY.origins[env_spec.name] = origin


def _problems(env_spec: EnvSpec) -> list[str]:
    problems = []
    if not _NAME.match(env_spec.name):
        problems.append("a name is lower-case letters, digits, '.', '_' and '-'")
    if not env_spec.instruction.strip():
        problems.append("it needs an instruction for its agent")
    if not (isinstance(env_spec.options, type) and issubclass(env_spec.options, BaseModel)):
        problems.append("options must be a pydantic model class")
        return problems
    if any(field.is_required() for field in env_spec.options.model_fields.values()):
        problems.append("every option needs a default")
    unknown = set(env_spec.task_options) - set(env_spec.options.model_fields)
    if unknown:
        problems.append(f"task_options {sorted(unknown)} are not fields of its options model")
    bad_groups = [group for group in env_spec.commands if not _NAME.match(group)]
    if bad_groups:
        problems.append(f"command group names {bad_groups} are not lower-case letters, digits, '.', '_' and '-'")
    low, high = env_spec.reward_range
    if not low < high:
        problems.append(f"reward_range {env_spec.reward_range} is empty")
    return problems


def _load_all() -> None:
    if _REGISTRY.loaded:
        return
    _REGISTRY.loaded = True
    builtin = [importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in BUILTIN.items()]
    installed = [point for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
                 if point.value not in BUILTIN.values()]
    for point in builtin + installed:
        origin = "built-in" if point in builtin else f"entry point {point.name} = {point.value}" + (
            f" ({point.dist.name} {point.dist.version})" if point.dist else "")
        try:
            loaded = point.load()
            specs = [loaded] if isinstance(loaded, EnvSpec) else list(loaded)
            for env_spec in specs:
                if not isinstance(env_spec, EnvSpec):
                    raise TypeError(f"{point.value} is not an EnvSpec or a list of them")
                if env_spec.name in _REGISTRY.specs:
                    raise ValueError(f"environment {env_spec.name!r} is already registered "
                                     f"({_REGISTRY.origins[env_spec.name]})")
                register(env_spec, origin)
        except Exception as err:  # a broken plug-in must not take the other environments down
            _REGISTRY.broken[f"{point.name} = {point.value}"] = f"{type(err).__name__}: {err}"


def note_broken(where: str, reason: str) -> None:
    """Record a part of a plug-in that could not be used (`rro envs` lists it under "not loaded")."""
    _load_all()
    _REGISTRY.broken[where] = reason


def disable(name: str, reason: str) -> None:
    """Take an environment out of the registry (its options clash with another's, say)."""
    _REGISTRY.specs.pop(name, None)
    _REGISTRY.broken[name] = reason


def spec(name: str) -> EnvSpec:
    _load_all()
    try:
        return _REGISTRY.specs[name]
    except KeyError:
        raise KeyError(f"unknown environment {name!r}; known: {', '.join(sorted(_REGISTRY.specs))}") from None


def make(name: str, **options: Any) -> Env:
    """Create an environment by name, e.g. `make("intercode-sql", backend="mariadb")`."""
    return spec(name).make(**options)


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY.specs)


def specs() -> list[EnvSpec]:
    """Every environment that loaded, in name order."""
    return [spec(name) for name in names()]


def origin(name: str) -> str:
    _load_all()
    return _REGISTRY.origins[name]


def broken() -> dict[str, str]:
    """Entry points (and environments) that could not be loaded, with the reason."""
    _load_all()
    return dict(_REGISTRY.broken)
