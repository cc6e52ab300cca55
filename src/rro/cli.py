"""The `rro` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from rro.config import ConfigError, DpoConfig, EvalConfig, ExpertsConfig, ExploreConfig, PipelineConfig, SftConfig, load_config
from rro.fetch import DataError

app = typer.Typer(help="Train LLM agents with Reward Rising Optimization.", no_args_is_help=True)
data_app = typer.Typer(help="Fetch datasets and build expert trajectories.", no_args_is_help=True)
db_app = typer.Typer(help="The private MariaDB server for InterCode-SQL's faithful backend.", no_args_is_help=True)
app.add_typer(data_app, name="data")
model_app = typer.Typer(help="Named models: fetch and convert them once.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(model_app, name="model")
console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from rro import __version__

        print(f"rro {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the libraries' own logs and progress bars "
                                 "(transformers, datasets, TRL); by default only rro's progress is shown."),
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print rro's version and exit."),
) -> None:
    """Train LLM agents with Reward Rising Optimization."""
    from rro import terminal

    terminal.configure(verbose)


# Options shared by every command that selects tasks; None means "not given" (keep the config's value).
SplitOpt = typer.Option(None, help="train, test, all, or dev (WebShop's goals 500-1499).")
SchemeOpt = typer.Option(None, help="InterCode-SQL: by-query (default, leak-free), by-db, or records (InterCode's order; leaky).")
BackendOpt = typer.Option(None, help="InterCode-SQL: sqlite (embedded default) or mariadb (faithful; needs `rro db up`).")
LimitOpt = typer.Option(None, help="Only the first N tasks of the split.")
DbOpt = typer.Option(None, "--db", help="Only tasks on this database (repeatable).")
HardnessOpt = typer.Option(None, "--hardness", help="Only tasks of this hardness: easy, medium, hard, extra (repeatable).")
EmptyDbOpt = typer.Option(None, "--include-empty-dbs", help="Keep wta_1, whose tables hold no rows (every gold result is empty).")
ConfigOpt = typer.Option(None, "--config", "-c", help="A TOML file with the command's settings; options override it.")
# Options of every command that runs a model.
ModelOpt = typer.Option(None, help="Model: a named model (smollm2-135m), a checkpoint folder or a transformers id.")
EnvOpt = typer.Option(None, help="Environment: intercode-sql (default), webshop or webshop-full.")
MaxStepsOpt = typer.Option(None, help="Turns before an episode is cut and scores 0 (default 10).")
PolicyBackendOpt = typer.Option(None, help="hf (transformers, default) or openai (an OpenAI-compatible server).")
BaseUrlOpt = typer.Option(None, help="The server for --policy-backend openai, e.g. http://127.0.0.1:8000/v1.")
DtypeOpt = typer.Option(None, help="auto (bf16 where the hardware has it), float32, bfloat16.")
MaxNewTokensOpt = typer.Option(None, help="Token limit of one agent turn.")
SeedOpt = typer.Option(None, help="Sampling seed.")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=1)


def _intercode_dump():
    from rro.envs.intercode_sql.dataset import DUMP_FILE
    from rro.fetch import require_cached

    return require_cached(DUMP_FILE)


@data_app.command("fetch")
def data_fetch(
    env: str = typer.Argument(..., help="Which dataset: intercode-sql, webshop (1000 products) or webshop-full."),
    source: Optional[Path] = typer.Option(None, "--from", help="A local mirror folder to copy from instead of downloading."),
) -> None:
    """Download (or copy from a mirror) and verify an environment's data files."""
    from rro.fetch import ensure_file

    if env == "intercode-sql":
        from rro.envs.intercode_sql.dataset import DUMP_FILE, TASKS_FILE

        remotes = (TASKS_FILE, DUMP_FILE)
    elif env in ("webshop", "webshop-full"):
        from rro.envs.webshop.catalog import ENV_NAMES, data_files

        remotes = data_files(ENV_NAMES[env])
    else:
        _fail(f"unknown dataset {env!r}; available: intercode-sql, webshop, webshop-full")
    try:
        for remote in remotes:
            path = ensure_file(remote, source)
            console.print(f"[green]ok[/green] {remote.name} -> {path}")
    except DataError as err:
        _fail(str(err))


@data_app.command("splits")
def data_splits(env: str = typer.Argument("intercode-sql")) -> None:
    """Print the task counts of every split (InterCode-SQL: of every split scheme)."""
    from rro.envs.intercode_sql.dataset import SPLIT_SCHEMES, load_tasks, normalize_sql

    if env in ("webshop", "webshop-full"):
        from rro.envs.webshop.catalog import SPLITS, task_loader

        table = Table("split", "goals", "products")
        try:
            for split in SPLITS:
                tasks = task_loader(env)(split)
                table.add_row(split, str(len(tasks)), str(len({t.fields["asin"] for t in tasks})))
        except (DataError, ValueError) as err:
            _fail(str(err))
        Console().print(table)
        return
    if env != "intercode-sql":
        _fail(f"unknown environment {env!r}")
    table = Table("scheme", "train", "test", "test golds also in train", "test databases")
    try:
        for scheme in SPLIT_SCHEMES:
            train, test = load_tasks("train", scheme), load_tasks("test", scheme)
            train_golds = {normalize_sql(t.fields["gold"]) for t in train}
            leaks = sum(normalize_sql(t.fields["gold"]) in train_golds for t in test)
            table.add_row(scheme, str(len(train)), str(len(test)), str(leaks), str(len({t.fields["db"] for t in test})))
    except DataError as err:
        _fail(str(err))
    Console().print(table)


@data_app.command("experts")
def data_experts(
    env: str = typer.Argument("intercode-sql"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output JSONL (chat messages, one trajectory per line)."),
    split: Optional[str] = SplitOpt,
    scheme: Optional[str] = SchemeOpt,
    backend: Optional[str] = BackendOpt,
    limit: Optional[int] = LimitOpt,
    db: Optional[list[str]] = DbOpt,
    hardness: Optional[list[str]] = HardnessOpt,
    include_empty_dbs: Optional[bool] = EmptyDbOpt,
    min_reward: Optional[float] = typer.Option(None, help="Keep trajectories scoring at least this (default 1.0)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write the oracle's trajectories that score at least --min-reward (1.0), in chat format for SFT."""
    from rro.experts import collect_experts

    try:
        cfg = load_config(ExpertsConfig, config, env=env, output=output, split=split, scheme=scheme, backend=backend,
                          limit=limit, dbs=db, hardness=hardness, include_empty_dbs=include_empty_dbs,
                          min_reward=min_reward)
        report = collect_experts(cfg)
    except (ConfigError, DataError, ValueError, RuntimeError) as err:
        _fail(str(err))
    console.print(f"kept {report['kept']} of {report['tasks']} trajectories (reward >= {cfg.min_reward}) -> {cfg.output}")
    console.print(f"rewards: {report['reward_counts']} (mean {report['mean_reward']:.3f})")


@db_app.command("up")
def db_up() -> None:
    """Start the private MariaDB server (initialise it and load the dump on first use)."""
    from rro.envs.intercode_sql import mariadb_backend

    try:
        paths = mariadb_backend.up(_intercode_dump())
    except (DataError, mariadb_backend.MariaDBError) as err:
        _fail(str(err))
    console.print(f"[green]MariaDB is up[/green] on {paths.socket}")


@db_app.command("down")
def db_down() -> None:
    """Stop the private MariaDB server."""
    from rro.envs.intercode_sql import mariadb_backend

    console.print("stopped" if mariadb_backend.down() else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the private MariaDB server runs, and where."""
    from rro.envs.intercode_sql import mariadb_backend

    info = mariadb_backend.status()
    print(json.dumps(info, indent=2))
    if not info["running"]:
        raise typer.Exit(code=3)


@app.command()
def play(
    env: str = typer.Argument("intercode-sql"),
    task: int = typer.Option(..., "--task", help="Task number (InterCode record index, WebShop goal index)."),
    backend: str = typer.Option("sqlite", help="sqlite or mariadb (InterCode-SQL)."),
) -> None:
    """Play a task by hand: type one action per line (InterCode-SQL: a MySQL statement or submit;
    WebShop: search[keywords] or click[value]).

    Reads standard input, so it can be scripted: `printf 'SHOW TABLES\\nsubmit\\n' | rro play ...`.
    """
    from rro.envs import make

    webshop = env in ("webshop", "webshop-full")
    try:
        if env == "intercode-sql":
            from rro.envs.intercode_sql.dataset import task_by_id

            the_task, environment = task_by_id(task), make(env, backend=backend)
            how = "Type a MySQL statement or `submit` (one per line)."
        elif webshop:
            from rro.envs.webshop.catalog import ENV_NAMES, goal_task, load_catalog

            goals = load_catalog(ENV_NAMES[env]).goals
            if not 0 <= task < len(goals):
                raise ValueError(f"--task must be a goal index from 0 to {len(goals) - 1}")
            the_task, environment = goal_task(env, task, goals[task]), make(env)
            how = "Type search[keywords] or click[value] (one per line)."
        else:
            raise ValueError(f"unknown environment {env!r}")
    except (DataError, ValueError, RuntimeError) as err:
        _fail(str(err))
    out = Console()
    interactive = sys.stdin.isatty()
    out.print(environment.reset(the_task), markup=False)
    out.print(how, style="dim")
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
            if webshop and not done:
                out.print("clickable: " + ", ".join(info["available_actions"]["clickables"]), style="dim", markup=False)
    finally:
        environment.close()
    out.print(f"reward: {reward}" if done else "ended without submitting: reward 0")


@app.command("eval")
def eval_command(
    model: Optional[str] = ModelOpt,
    policy: Optional[str] = typer.Option(None, help="model (default) or expert (the oracle; no model needed)."),
    env: Optional[str] = EnvOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (episodes.jsonl, summary.json)."),
    split: Optional[str] = SplitOpt,
    scheme: Optional[str] = SchemeOpt,
    backend: Optional[str] = BackendOpt,
    limit: Optional[int] = LimitOpt,
    db: Optional[list[str]] = DbOpt,
    hardness: Optional[list[str]] = HardnessOpt,
    include_empty_dbs: Optional[bool] = EmptyDbOpt,
    max_steps: Optional[int] = MaxStepsOpt,
    policy_backend: Optional[str] = PolicyBackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    dtype: Optional[str] = DtypeOpt,
    temperature: Optional[float] = typer.Option(None, help="0 = greedy (default)."),
    max_new_tokens: Optional[int] = MaxNewTokensOpt,
    seed: Optional[int] = SeedOpt,
    icl_shots: Optional[int] = typer.Option(None, help="In-context examples: 1 for base models, 0 for rro checkpoints (default)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Evaluate a model (or the expert) on a split; resumable (rerun with the same -o to continue)."""
    from rro.evaluate import evaluate
    from rro.policy import PolicyError

    try:
        cfg = load_config(EvalConfig, config, model=model, policy=policy, env=env, output=output, split=split,
                          scheme=scheme, backend=backend, limit=limit, dbs=db, hardness=hardness,
                          include_empty_dbs=include_empty_dbs, max_steps=max_steps, policy_backend=policy_backend,
                          base_url=base_url, dtype=dtype, temperature=temperature, max_new_tokens=max_new_tokens,
                          seed=seed, icl_shots=icl_shots)
        summary = evaluate(cfg)
    except (ConfigError, DataError, PolicyError, ValueError, RuntimeError) as err:
        _fail(str(err))
    who = cfg.model if cfg.policy == "model" else "expert"
    table = Table("metric", "value", title=f"{who} on {cfg.env} {cfg.split} ({cfg.backend})")
    for key in ("tasks", "avg_reward", "success_rate", "mean_steps", "invalid_turn_rate", "generated_tokens",
                "wall_seconds_this_run"):
        value = summary[key]
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    for name, block in summary["by_hardness"].items():
        table.add_row(f"  {name}", f"{block['avg_reward']:.2f} avg, {block['success_rate']:.1f}% success ({block['tasks']})")
    Console().print(table)
    console.print(f"wrote {cfg.output}/summary.json")


@app.command("explore")
def explore_command(
    strategy: Optional[str] = typer.Option(None, help="rising (RRO, default), fixed, ipr or outcome."),
    model: Optional[str] = ModelOpt,
    env: Optional[str] = EnvOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (pairs.jsonl, walks.jsonl, stats.json)."),
    split: Optional[str] = SplitOpt,
    scheme: Optional[str] = SchemeOpt,
    backend: Optional[str] = BackendOpt,
    limit: Optional[int] = LimitOpt,
    db: Optional[list[str]] = DbOpt,
    hardness: Optional[list[str]] = HardnessOpt,
    rollouts: Optional[int] = typer.Option(None, help="N: rollouts per value estimate (default 5)."),
    max_candidates: Optional[int] = typer.Option(None, help="K: most candidates per step (default 5)."),
    max_steps: Optional[int] = MaxStepsOpt,
    max_new_tokens: Optional[int] = MaxNewTokensOpt,
    dtype: Optional[str] = DtypeOpt,
    policy_backend: Optional[str] = PolicyBackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    seed: Optional[int] = SeedOpt,
    adaptive: Optional[bool] = typer.Option(None, "--adaptive", help="Stop a candidate's rollouts once it cannot rise."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Explore tasks with a strategy and collect step-level preference pairs; resumable."""
    from rro.explore import explore
    from rro.policy import PolicyError

    try:
        cfg = load_config(ExploreConfig, config, strategy=strategy, model=model, env=env, output=output, split=split,
                          scheme=scheme, backend=backend, limit=limit, dbs=db, hardness=hardness, rollouts=rollouts,
                          max_candidates=max_candidates, max_steps=max_steps, max_new_tokens=max_new_tokens,
                          dtype=dtype, policy_backend=policy_backend, base_url=base_url, seed=seed,
                          adaptive=adaptive)
        stats = explore(cfg)
    except (ConfigError, DataError, PolicyError, ValueError, RuntimeError) as err:
        _fail(str(err))
    table = Table("metric", "value", title=f"explore {cfg.strategy} with {cfg.model} on {cfg.env} {cfg.split}")
    cps = stats["candidates_per_step"]
    for key, value in [("tasks", stats["tasks"]), ("steps", stats["steps"]), ("pairs", stats["pairs"]),
                       ("candidates per step (mean)", f"{cps['mean']:.2f}"), ("candidates per step (max)", cps["max"]),
                       ("histogram", cps["histogram"]), ("rising rate", stats["rising_rate"]),
                       ("rollouts", stats["rollouts"]), ("rollouts saved (adaptive)", stats["rollouts_saved"]),
                       ("generated tokens", stats["generated_tokens"]),
                       ("wall seconds", f"{stats['wall_seconds']:.0f}")]:
        table.add_row(key, str(value))
    Console().print(table)
    console.print(f"wrote {cfg.output}/pairs.jsonl, walks.jsonl, steps.jsonl, stats.json")


# Options of the training commands.
EpochsOpt = typer.Option(None, help="Passes over the data (may be fractional).")
LearningRateOpt = typer.Option(None, "--lr", help="Peak learning rate (cosine schedule).")
BatchSizeOpt = typer.Option(None, help="Records per device and step (gradient accumulation: --grad-accum).")
GradAccumOpt = typer.Option(None, "--grad-accum", help="Steps accumulated per optimizer update.")
MaxLengthOpt = typer.Option(None, help="Token limit of one record.")
LoraOpt = typer.Option(None, "--lora/--full", help="LoRA adapters (merged on save) or full fine-tuning (default).")
PrecisionOpt = typer.Option(None, help="auto (bf16 autocast where supported), bf16 or fp32.")
ReportToOpt = typer.Option(None, help="Loss curves to none (default), tensorboard or wandb.")


def _print_training(record: dict) -> None:
    metrics = record.get("metrics", {})
    console.print(f"[green]trained[/green] {record['kind']} on {record['records']} records "
                  f"({record.get('left_out_too_long', 0)} left out as too long); "
                  f"train loss {metrics.get('train_loss', float('nan')):.4f}, {record['train_seconds']:.0f} s "
                  f"-> {record['config']['output']}")


@app.command()
def sft(
    model: Optional[str] = ModelOpt,
    data: Optional[list[Path]] = typer.Option(None, help="Expert trajectories (JSONL with `messages`; repeatable)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The checkpoint folder to write."),
    limit: Optional[int] = typer.Option(None, help="Only the first N trajectories."),
    epochs: Optional[float] = EpochsOpt,
    lr: Optional[float] = LearningRateOpt,
    batch_size: Optional[int] = BatchSizeOpt,
    grad_accum: Optional[int] = GradAccumOpt,
    max_length: Optional[int] = MaxLengthOpt,
    lora: Optional[bool] = LoraOpt,
    precision: Optional[str] = PrecisionOpt,
    report_to: Optional[str] = ReportToOpt,
    seed: Optional[int] = SeedOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Supervised fine-tuning on expert trajectories (loss on assistant turns); resumable."""
    from rro.train.sft import sft as run_sft

    try:
        cfg = load_config(SftConfig, config, model=model, data=data or None, output=output, limit=limit,
                          epochs=epochs, learning_rate=lr, batch_size=batch_size, gradient_accumulation_steps=grad_accum,
                          max_length=max_length, lora=lora, precision=precision, report_to=report_to, seed=seed)
        record = run_sft(cfg)
    except (ConfigError, DataError, FileNotFoundError, ValueError, RuntimeError) as err:
        _fail(str(err))
    _print_training(record)


@app.command()
def dpo(
    model: Optional[str] = typer.Option(None, help="The SFT checkpoint to start from; it is also the reference model."),
    pairs: Optional[list[Path]] = typer.Option(None, help="Preference pairs (pairs.jsonl from rro explore; repeatable)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The checkpoint folder to write."),
    limit: Optional[int] = typer.Option(None, help="Only the first N pairs."),
    beta: Optional[float] = typer.Option(None, help="DPO's beta (default 0.1)."),
    sft_weight: Optional[float] = typer.Option(None, help="Weight of an SFT term on the chosen side (IPR's mixture; 0 = plain DPO)."),
    epochs: Optional[float] = EpochsOpt,
    lr: Optional[float] = LearningRateOpt,
    batch_size: Optional[int] = BatchSizeOpt,
    grad_accum: Optional[int] = GradAccumOpt,
    max_length: Optional[int] = MaxLengthOpt,
    lora: Optional[bool] = LoraOpt,
    precision: Optional[str] = PrecisionOpt,
    report_to: Optional[str] = ReportToOpt,
    seed: Optional[int] = SeedOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """DPO on preference pairs, against the starting model as reference; resumable."""
    from rro.train.dpo import dpo as run_dpo

    try:
        cfg = load_config(DpoConfig, config, model=model, pairs=pairs or None, output=output, limit=limit, beta=beta,
                          sft_weight=sft_weight, epochs=epochs, learning_rate=lr, batch_size=batch_size,
                          gradient_accumulation_steps=grad_accum, max_length=max_length, lora=lora,
                          precision=precision, report_to=report_to, seed=seed)
        record = run_dpo(cfg)
    except (ConfigError, DataError, FileNotFoundError, ValueError, RuntimeError) as err:
        _fail(str(err))
    _print_training(record)


@app.command("run")
def run_command(
    config: Path = typer.Argument(..., help="The pipeline's TOML file (see configs/)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (overrides the config's)."),
) -> None:
    """The whole pipeline: experts -> sft -> eval -> explore -> dpo -> eval; resumable, stage by stage."""
    from rro.pipeline import run_pipeline
    from rro.policy import PolicyError

    try:
        cfg = load_config(PipelineConfig, config, output=output)
        results = run_pipeline(cfg)
    except (ConfigError, DataError, PolicyError, FileNotFoundError, ValueError, RuntimeError) as err:
        _fail(str(err))
    console.print(f"[green]done[/green]: {', '.join(m['method'] for m in results['methods'])} "
                  f"-> {cfg.output}/results.json (tables and plots: rro report {cfg.output} -o OUT)")


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="Run directories of `rro run`."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for results.md, results.csv and the plots."),
    resamples: int = typer.Option(2000, help="Bootstrap resamples for the confidence intervals."),
) -> None:
    """Results table (markdown, CSV) and plots (PNG) of one or more pipeline runs."""
    from rro.report import write_report

    try:
        table = write_report(runs, output, resamples=resamples)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    print(table)
    console.print(f"wrote {output}/index.html (open it in a browser), results.md, results.csv, paired.md and the plots")


@model_app.command("fetch")
def model_fetch(name: str = typer.Argument("smollm2-135m", help="A named model: smollm2-135m or tiny-random.")) -> None:
    """Download a named model and convert it once into an ordinary checkpoint under RRO_HOME."""
    from rro.policy import PolicyError
    from rro.policy.models import fetch_model

    try:
        path = fetch_model(name)
    except PolicyError as err:
        _fail(str(err))
    console.print(f"[green]ok[/green] {name} -> {path}")


if __name__ == "__main__":
    app()
