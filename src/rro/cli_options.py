"""Command-line options derived from the config models, so that a setting is declared once.

`config_command(app, "eval", EvalConfig)` turns every field of `EvalConfig` into an option of
`rro eval`: `--field-name` (or the flags in the field's `json_schema_extra={"cli": [...]}`), its
type, its help from the field's description and its default shown from the field's default. Options
not given stay out of the config, so a TOML file (`-c/--config`) and the model's defaults fill them:
command line over TOML over defaults. Values are validated by the model itself, so a bad value is
an error naming the field whether it came from the command line, a TOML file or a `rro run` table.

Why typer driven from the models rather than pydantic-settings' CLI, tyro or jsonargparse: the
commands stay ordinary typer commands of one app (sub-apps, app-level options, CliRunner tests),
today's irregular option names stay declarable, and the adapter is one small module.
"""

from __future__ import annotations

import functools
import inspect
import types
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Optional, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rro.config import ConfigError, field_marks, load_config

# The types an option can have; a field of another type (a nested table) is TOML-only.
_SCALARS = (bool, int, float, str, Path)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _option_type(annotation: Any) -> tuple[Any, list[str] | None, bool] | None:
    """(Python type for typer, the choices of a Literal, repeatable?) or None when unsupported."""
    annotation = _unwrap_optional(annotation)
    repeatable = get_origin(annotation) is list
    if repeatable:
        annotation = _unwrap_optional(get_args(annotation)[0])
    choices = None
    if get_origin(annotation) is Literal:
        choices = [str(value) for value in get_args(annotation)]
        kinds = {type(value) for value in get_args(annotation)}
        annotation = kinds.pop() if len(kinds) == 1 else str
    if annotation not in _SCALARS:
        return None
    return (list[annotation] if repeatable else annotation), choices, repeatable


def _default_text(field: FieldInfo) -> str | None:
    if field.is_required():
        return None
    default = field.get_default(call_default_factory=True)
    if default is None or default == []:
        return None
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, list):
        return ", ".join(str(item) for item in default)
    return str(default)


def describe_field(name: str, field: FieldInfo) -> str:
    """One line for a listing: `--flag`, its choices or type, its default and its description."""
    kind = _option_type(field.annotation)
    extra = field_marks(field)
    flag = (extra.get("cli") or [f"--{name.replace('_', '-')}"])[0]
    if kind is None:
        what = "(TOML only)"
    else:
        python_type, choices, repeatable = kind
        element = get_args(python_type)[0] if repeatable else python_type
        what = "|".join(choices) if choices else element.__name__
        what += " (repeatable)" if repeatable else ""
    default = _default_text(field)
    return f"{flag} {what}" + (f" = {default}" if default is not None else "") + f": {field.description or ''}"


def field_option(name: str, field: FieldInfo) -> inspect.Parameter | None:
    """The typer option of one model field (None when its type has no command-line form)."""
    kind = _option_type(field.annotation)
    if kind is None:
        return None
    python_type, choices, repeatable = kind
    extra = field_marks(field)
    flags = list(extra.get("cli", []))
    help = field.description or ""
    if field.is_required():
        help += " (required, here or in --config)"
    elif (shown := _default_text(field)) is not None:
        help += f" (default: {shown})"  # not in [brackets]: typer's rich help would take them as markup
    if repeatable:
        help += " (repeatable)"
    option = typer.Option(
        *flags,
        help=help.strip(),
        show_default=False,  # typer's would read "None": the model's default is in the help instead
        metavar=("[" + "|".join(choices) + "]") if choices else None,
        rich_help_panel=extra.get("panel"),
    )
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[python_type], option])


def field_argument(name: str, field: FieldInfo) -> inspect.Parameter:
    """A positional argument for a field (e.g. the environment of `rro data experts ENV`)."""
    python_type, _choices, repeatable = _option_type(field.annotation)
    help = field.description or ""
    if (shown := _default_text(field)) is not None:
        help += f" (default: {shown})"
    argument = typer.Argument(help=help.strip(), show_default=False, metavar=name.upper())
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                             annotation=Annotated[Optional[python_type], argument])


def model_parameters(model: type[BaseModel], arguments: tuple[str, ...] = (),
                     only: tuple[str, ...] | None = None) -> list[inspect.Parameter]:
    """The command-line parameters of a model: `arguments` positional, the other fields options."""
    parameters = [field_argument(name, model.model_fields[name]) for name in arguments]
    # The output first: it is the option every run needs.
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] != "output")
    for name, field in fields:
        if name in arguments or (only is not None and name not in only):
            continue
        if name == "config":
            raise TypeError(f"{model.__name__}: a field may not be named `config` (it is the TOML file's option)")
        parameter = field_option(name, field)
        if parameter is not None:
            parameters.append(parameter)
    return parameters


_CONFIG_OPTION = typer.Option("--config", "-c", help="A TOML file with the command's settings; options override it.")
_CONFIG_ARGUMENT = typer.Argument(help="The TOML file with the settings (see configs/).", metavar="CONFIG")


def config_command(app: typer.Typer, name: str, model: type[BaseModel], *, arguments: tuple[str, ...] = (),
                   only: tuple[str, ...] | None = None, config_argument: bool = False,
                   on_error: Callable[[str], None]):
    """Register the decorated `body(config: model)` as command `name` with the model's options.

    `arguments`: fields taken positionally; `only`: the fields offered on the command line (default
    all); `config_argument`: the TOML file is a required positional argument rather than `-c`.
    A config that fails to load goes to `on_error` with a message naming the field.
    """

    def register(body: Callable[[Any], None]) -> Callable[[Any], None]:
        parameters = model_parameters(model, arguments, only)
        if config_argument:
            config_parameter = inspect.Parameter("config", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                 annotation=Annotated[Path, _CONFIG_ARGUMENT])
            parameters.insert(0, config_parameter)
        else:
            parameters.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                                                annotation=Annotated[Optional[Path], _CONFIG_OPTION]))

        @functools.wraps(body)
        def command(**values: Any) -> None:
            config_file = values.pop("config")
            given = {key: value for key, value in values.items() if value is not None and value != []}
            try:
                config = load_config(model, config_file, **given)
            except ConfigError as err:
                on_error(str(err))
                return
            body(config)

        del command.__wrapped__  # typer must read the signature below, not the body's
        command.__signature__ = inspect.Signature(parameters)
        command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        app.command(name)(command)
        return body

    return register
