"""Environments behind one small interface; see `rro.envs.base`."""

from rro.envs.base import Env, EnvSpec, StepResult, Task, make, names, spec

__all__ = ["Env", "EnvSpec", "StepResult", "Task", "make", "names", "spec"]
