"""The environment interface: tasks, step results, and a registry of environments.

An environment is deterministic given (task, action sequence): `reset(task)` starts a fresh
episode, `step(action)` applies one action. States are restored by replaying actions into a fresh
environment, never by sharing mutable state between episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, NamedTuple, Protocol


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


@dataclass(frozen=True)
class EnvSpec:
    """What the rest of rro needs to know about an environment, looked up by name."""

    name: str
    make: Callable[..., Env]  # keyword options, e.g. backend="sqlite"
    load_tasks: Callable[..., list[Task]]  # split=..., plus environment-specific filters
    # An oracle that knows the task's answer: a generator that yields agent turns
    # ("Thought: ...\nAction: ...") and is sent each resulting observation.
    expert: Callable[[Task], Generator[str, str, None]]
    terminal_actions: frozenset[str]
    reward_range: tuple[float, float] = (-1.0, 1.0)  # bounds of an episode's final reward
    # The task-selection settings (rro.config.TaskSelection fields) this environment takes:
    # passed to load_tasks and to make; setting any other one is a configuration error.
    task_options: tuple[str, ...] = ()
    env_options: tuple[str, ...] = ()


_REGISTRY: dict[str, EnvSpec] = {}


def register(spec: EnvSpec) -> None:
    _REGISTRY[spec.name] = spec


def spec(name: str) -> EnvSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown environment {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def make(name: str, **options: Any) -> Env:
    """Create an environment by name, e.g. `make("intercode-sql", backend="mariadb")`."""
    return spec(name).make(**options)


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Imported lazily so that `rro.envs.base` stays importable without any environment's extras.
    from rro.envs import intercode_sql, webshop  # noqa: F401
