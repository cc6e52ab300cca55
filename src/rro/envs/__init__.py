"""Environments behind one small interface; see `rro.envs.base` (and docs/howto/environments.md, "Your own environment")."""

from rro.envs.base import Env, EnvSpec, Example, ParsedAction, StepResult, Task, make, names, spec

__all__ = ["Env", "EnvSpec", "Example", "ParsedAction", "StepResult", "Task", "make", "names", "spec"]
