"""Typed command configurations: one pydantic model per command, loadable from TOML and
overridable from the command line. Invalid values fail at load time, naming the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rro.envs.base import Env, Task, make, spec


class ConfigError(ValueError):
    pass


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class TaskSelection(StrictModel):
    """Which tasks of which environment, and how the environment runs them."""

    env: str = "intercode-sql"
    split: Literal["train", "test", "all"] = "test"
    scheme: Literal["by-query", "by-db", "records"] = "by-query"
    dbs: list[str] = Field(default_factory=list)
    hardness: list[Literal["easy", "medium", "hard", "extra"]] = Field(default_factory=list)
    include_empty_dbs: bool = False
    limit: int | None = Field(default=None, ge=1)
    backend: Literal["sqlite", "mariadb"] = "sqlite"
    max_steps: int = Field(default=10, ge=1)

    def tasks(self) -> list[Task]:
        tasks = spec(self.env).load_tasks(
            split=self.split,
            scheme=self.scheme,
            dbs=self.dbs or None,
            hardness=self.hardness or None,
            include_empty_dbs=self.include_empty_dbs,
        )
        return tasks[: self.limit] if self.limit else tasks

    def make_env(self) -> Env:
        return make(self.env, backend=self.backend)


class EvalConfig(TaskSelection):
    policy: Literal["expert"] = "expert"
    icl_shots: int = Field(default=0, ge=0)
    output: Path


class ExpertsConfig(TaskSelection):
    split: Literal["train", "test", "all"] = "train"
    output: Path


Config = TypeVar("Config", bound=BaseModel)


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(config)"
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
        raise ConfigError(_describe(err)) from None
