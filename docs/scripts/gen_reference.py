"""Build-time pages (mkdocs-gen-files): the command-line and settings references.

Both are read from the declarations themselves, so they cannot drift from the code: the CLI
reference from the typer app (`rro.cli.app`, whose options come from the config models), the
settings reference from the config models' fields (`rro.config`) and the environments' own
options models (`EnvSpec.options`). Each page's hand-written introduction (docs/reference/*.md)
comes first; the generated tables are appended to it.
"""

from __future__ import annotations

import mkdocs_gen_files
import typer.core
import typer.main
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rro import cli, config
from rro.cli_options import _default_text, _option_type
from rro.envs import base as envs


def cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


# -- the command line --------------------------------------------------------------------------

def commands(group, path: list[str]):
    """(path, command) for every command of the app, depth first, in the order they were added."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, path + [name])
        else:
            yield path + [name], command


def parameter_row(parameter) -> str:
    if isinstance(parameter, typer.core.TyperArgument):
        flags = parameter.metavar or parameter.name.upper()
    else:
        flags = ", ".join(parameter.opts + parameter.secondary_opts)
    if parameter.required:
        flags += " (required)"
    help_text = getattr(parameter, "help", None) or ""
    return f"| `{cell(flags)}` | {cell(help_text)} |"


def cli_reference() -> str:
    root = typer.main.get_command(cli.app)  # typer carries its own copy of click: no `click` imports here
    owners = {group: env_spec for env_spec in envs.specs() for group in env_spec.commands}
    lines = []
    for path, command in commands(root, []):
        name = " ".join(["rro", *path])
        with command.context_class(command, info_name=name) as context:
            usage = " ".join(command.collect_usage_pieces(context))
        lines += [f"## `{name}`", "", f"```\n{name} {usage}\n```", "", (command.help or "").strip(), ""]
        if path[0] in owners:
            owner = owners[path[0]]
            lines += [f"A command of the `{owner.name}` environment ({cell(envs.origin(owner.name))}; "
                      "`EnvSpec.commands`).", ""]
        parameters = [p for p in command.params if not p.hidden and p.name != "help"]
        if parameters:
            lines += ["| option | meaning |", "|---|---|", *(parameter_row(p) for p in parameters), ""]
    return "\n".join(lines)


# -- the settings ------------------------------------------------------------------------------

def type_text(field: FieldInfo) -> str:
    kind = _option_type(field.annotation)
    if kind is None:
        return "table"
    python_type, choices, repeatable = kind
    element = python_type.__args__[0] if repeatable else python_type
    text = " \\| ".join(f"`{choice}`" for choice in choices) if choices else element.__name__
    return f"list of {text}" if repeatable else text


def flag_text(name: str, field: FieldInfo) -> str:
    if _option_type(field.annotation) is None:
        return "TOML only"
    extra = config.field_marks(field)
    return ", ".join(f"`{flag}`" for flag in extra.get("cli") or [f"--{name.replace('_', '-')}"])


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    shown = _default_text(field)
    return "–" if shown is None else f"`{shown}`"


def settings_table(fields: dict[str, FieldInfo]) -> list[str]:
    rows = ["| setting (TOML key) | type | default | command line | meaning |", "|---|---|---|---|---|"]
    for name, field in fields.items():
        rows.append(f"| `{name}` | {type_text(field)} | {default_text(field)} | {flag_text(name, field)} | "
                    f"{cell(field.description or '')} |")
    return rows + [""]


# The command each config model belongs to, and its table in a `rro run` config.
MODELS: list[tuple[str, type[BaseModel], str | None]] = [
    ("rro eval", config.EvalConfig, "[eval]"),
    ("rro explore", config.ExploreConfig, "[explore]"),
    ("rro data experts", config.ExpertsConfig, "[experts]"),
    ("rro sft", config.SftConfig, "[sft]"),
    ("rro dpo", config.DpoConfig, "[dpo]"),
    ("rro run", config.PipelineConfig, None),
    ("rro play", config.PlayConfig, None),
    ("rro report", config.ReportConfig, None),
    ("rro pairs export", config.PairsExportConfig, None),
]


def settings_reference() -> str:
    lines = []
    for command, model, table in MODELS:
        own = {name: field for name, field in model.model_fields.items() if name not in config.ENV_OPTIONS}
        where = (f"TOML (`{command} -c FILE`) and the `{table}` table of a `rro run` config"
                 if table else "TOML and the command line")
        lines += [f"## `{model.__name__}`: {command}", "", cell(model.__doc__ or "") if model.__doc__ else "",
                  "", f"Read from {where}.", ""]
        lines += settings_table(own)
        env_owned = [name for name in model.model_fields if name in config.ENV_OPTIONS]
        if env_owned:
            lines += ["Also every installed environment's own settings (below): "
                      + ", ".join(f"`{name}`" for name in env_owned) + ".", ""]
    lines += ["## Environments' own settings", "",
              "Declared by each environment on its `EnvSpec.options` model; every task-running command "
              "takes them, and setting one of an environment other than the selected one is an error.", ""]
    for env_spec in envs.specs():
        lines += [f"### `{env_spec.name}`", "", cell(env_spec.description), ""]
        if env_spec.options.model_fields:
            lines += settings_table(dict(env_spec.options.model_fields))
        else:
            lines += ["No settings of its own.", ""]
    return "\n".join(lines)


with mkdocs_gen_files.open("reference/cli.md", "a") as page:
    page.write("\n" + cli_reference())
with mkdocs_gen_files.open("reference/settings.md", "a") as page:
    page.write("\n" + settings_reference())
