"""`rro run CONFIG.toml`: the whole method, stage by stage, in one run directory.

    experts -> sft -> eval(sft) -> for each strategy and variant, for each iteration:
                                    explore(newest model) -> dpo -> eval

A variant is a named method: a strategy with [explore] settings of its own on top of the shared
table (`[variants.rising-expert]` with `strategy = "rising"`, `anchor = "expert"`), so that one run
compares, say, both anchors of one strategy; its outputs and report rows carry its name.

Every stage is one of the ordinary commands (`rro data experts`, `rro sft`, `rro eval`,
`rro explore`, `rro dpo`) with its own typed config; the pipeline only wires outputs to inputs.
All stage configs are built before anything runs, so a bad field fails at once, named by its
table (`sft.learning_rate`). A finished stage leaves `RUN/stages/<name>.json` holding its config
and where and how long it ran: a rerun skips it, and refuses to go on if the config changed
(outputs downstream would be stale).
Interrupted stages resume through their command's own resumption. Strategies share the experts,
SFT and SFT evaluation, and explore the same tasks with the same seeds, so they compare paired.

    RUN/experts.jsonl   RUN/sft/   RUN/eval-sft/
    RUN/<strategy or variant>/iter<i>/explore/  .../dpo/  .../eval/
    RUN/<strategy or variant>/equal/dpo/  .../eval/   with equal_pairs: the same pair count for all
    RUN/eval-sft-equal/  with equal_pairs: the arm's own evaluation of the SFT model it starts from
    RUN/results.json    the methods and where their outputs are (what `rro report` reads)
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from rich.console import Console

from rro.folder_lock import hold_folder
from rro.jsonl import read_jsonl, write_json_atomic
from rro.policy import release_engines
from rro.config import (
    ConfigError,
    DpoConfig,
    EvalConfig,
    ExpertsConfig,
    ExploreConfig,
    PipelineConfig,
    SftConfig,
    TrainConfig,
    describe_error,
    run_identity,
    value_when_absent,
)

console = Console(stderr=True)


@dataclass
class Stage:
    name: str  # unique in the run: experts, sft, eval-sft, explore-rising-1, ...
    config: BaseModel
    run: Callable[[Any], Any]


def _stage_config(cls: type[BaseModel], table: str, section: dict[str, Any], wired: dict[str, Any]) -> BaseModel:
    refused = sorted(set(section) & set(wired))
    if refused:
        raise ConfigError(f"[{table}] may not set {', '.join(refused)}: the pipeline sets it (use the top-level fields)")
    try:
        return cls.model_validate({**section, **wired})
    except ValidationError as err:
        raise ConfigError(describe_error(err, table)) from None


def _same_settings(saved: dict[str, Any], config: BaseModel) -> bool:
    """Whether a finished stage ran with `config`: the same values of the settings that identify
    it (rro.config.run_identity). Settings that rro gained after the stage ran count as the same
    when they are at what the stage ran with before they existed (their default, or `when_absent`);
    settings this installation does not know (a plug-in environment's, since uninstalled) cannot
    change what runs now."""
    wanted = config.model_dump(mode="json")
    fields = type(config).model_fields
    return all(saved[k] == wanted[k] if k in saved else wanted[k] == value_when_absent(fields[k])
               for k in run_identity(config))


def train_dpo_stage(config: DpoConfig) -> dict:
    """DPO, or, when exploration found no pair at all, the starting model kept unchanged and marked
    so (an exploration with 0 pairs is a result, not a crash)."""
    from rro.train.dpo import dpo, keep_starting_model

    if all(path.exists() for path in config.pairs) and not any(True for path in config.pairs for _ in read_jsonl(path)):
        console.print("[yellow]exploration found no preference pairs: the starting model is kept unchanged[/yellow]")
        return keep_starting_model(config, "exploration found no preference pairs")
    return dpo(config)


def plan(config: PipelineConfig) -> tuple[list[Stage], list[dict[str, Any]]]:
    """The stages in order, and the methods they produce (for the results table)."""
    from rro.evaluate import evaluate
    from rro.experts import collect_experts
    from rro.explore import explore
    from rro.train.sft import sft

    run = Path(config.output)
    tasks = {"env": config.env, **config.run_wide_options()}
    tracked = {"report_to": config.report_to}  # every stage's figures go to one tracker
    experts_file = run / "experts.jsonl"
    stages = [
        Stage("experts", _stage_config(ExpertsConfig, "experts", config.experts, {**tasks, "output": experts_file}),
              collect_experts),
        Stage("sft", _stage_config(SftConfig, "sft", config.sft,
                                   {**tracked, "model": config.model, "data": [experts_file],
                                    "output": run / "sft"}), sft),
        Stage("eval-sft", _stage_config(EvalConfig, "eval", config.eval,
                                        {**tasks, **tracked, "model": str(run / "sft"),
                                         "output": run / "eval-sft"}), evaluate),
    ]
    methods = [{"method": "sft", "eval": str(run / "eval-sft"), "sft": str(run / "sft")}]
    explored: list[str] = []
    for name, strategy, table, explore_section in _explorations(config):
        explore_section = _resolve_replay(config, name, table, explore_section, explored)
        explored.append(name)
        model = run / "sft"
        for iteration in range(1, config.iterations + 1):
            where = run / name / f"iter{iteration}"
            explore_config = _stage_config(ExploreConfig, table, explore_section,
                                           {**tasks, **tracked, "model": str(model), "strategy": strategy,
                                            "output": where / "explore"})
            stages += [
                Stage(f"explore-{name}-{iteration}", explore_config, explore),
                Stage(f"dpo-{name}-{iteration}", _stage_config(
                    DpoConfig, "dpo", config.dpo,
                    {**tracked, "model": str(model), "pairs": [where / "explore" / "pairs.jsonl"],
                     "output": where / "dpo"}), train_dpo_stage),
                Stage(f"eval-{name}-{iteration}", _stage_config(
                    EvalConfig, "eval", config.eval, {**tasks, **tracked, "model": str(where / "dpo"),
                                                       "output": where / "eval"}),
                    evaluate),
            ]
            model = where / "dpo"
            methods.append({
                "method": name if config.iterations == 1 else f"{name}-{iteration}",
                "strategy": strategy, **_walk_settings(explore_config),
                "iteration": iteration, "sft": str(run / "sft"),
                "explore": [str(run / name / f"iter{i}" / "explore") for i in range(1, iteration + 1)],
                "dpo": [str(run / name / f"iter{i}" / "dpo") for i in range(1, iteration + 1)],
                "eval": str(where / "eval"),
            })
    if config.equal_pairs:
        equal_stages, equal_methods = _equal_pairs_arm(config, tasks, methods[1:])
        stages += equal_stages
        methods += equal_methods
    return stages, methods


def _equal_pairs_arm(config: PipelineConfig, tasks: dict[str, Any],
                     explored: list[dict[str, Any]]) -> tuple[list[Stage], list[dict[str, Any]]]:
    """DPO from SFT on the same number of pairs for every method (the fewest any method found, a seeded
    sample of each one's own), then its evaluation: METHOD-equal measures pair quality apart from count.
    The count is known only once every exploration has finished, so each DPO stage reads it when it runs.

    The arm first evaluates the SFT model it starts from again (`sft-equal`), and its methods are
    paired against that: on one machine it repeats eval-sft episode for episode (evaluation is
    greedy and deterministic), but a run that resumed elsewhere retrains SFT there, and on a CPU of
    another precision (bf16 or float32, `auto`) that is not bit-for-bit the model that explored."""
    if config.iterations != 1:
        raise ConfigError("equal_pairs needs iterations = 1: later iterations explore newer models")
    from rro.evaluate import evaluate

    run = Path(config.output)
    pair_files = [Path(method["explore"][0]) / "pairs.jsonl" for method in explored]
    baseline = run / "eval-sft-equal"
    stages = [Stage("eval-sft-equal", _stage_config(
        EvalConfig, "eval", config.eval, {**tasks, "model": str(run / "sft"), "output": baseline}), evaluate)]
    methods = [{"method": "sft-equal", "equal_pairs": True, "eval": str(baseline), "sft": str(run / "sft")}]

    def train_on_equal_count(dpo_config: DpoConfig) -> dict:
        fewest = min(sum(1 for _ in read_jsonl(path)) for path in pair_files)
        if fewest == 0:
            from rro.train.dpo import keep_starting_model
            return keep_starting_model(dpo_config, "a method found no preference pairs: no equal count to train on")
        return train_dpo_stage(dpo_config.model_copy(update={"pairs_sample": fewest}))

    for method, pairs in zip(explored, pair_files):
        name, where = method["method"], run / method["method"] / "equal"
        stages += [
            Stage(f"dpo-{name}-equal", _stage_config(
                DpoConfig, "dpo", config.dpo, {"model": str(run / "sft"), "pairs": [pairs], "output": where / "dpo"}),
                train_on_equal_count),
            Stage(f"eval-{name}-equal", _stage_config(
                EvalConfig, "eval", config.eval, {**tasks, "model": str(where / "dpo"), "output": where / "eval"}),
                evaluate),
        ]
        methods.append({**method, "method": f"{name}-equal", "equal_pairs": True,
                        "dpo": [str(where / "dpo")], "eval": str(where / "eval")})
    return stages, methods


def _resolve_replay(config: PipelineConfig, name: str, table: str, section: dict[str, Any],
                    explored: list[str]) -> dict[str, Any]:
    """A variant's `replay_from` names a method of this run explored before it: its exploration folder."""
    if "replay_from" not in section:
        return section
    source = section["replay_from"]
    if table == "explore":
        raise ConfigError("[explore] may not set replay_from: a variant replays another method (e.g. "
                          "[variants.rising-expert] replay_from = \"fixed-expert\")")
    if source not in explored:
        raise ConfigError(f"[{table}] replay_from = {source!r}: name a method of this run that explores before "
                          f"{name!r} (the strategies, then the variants in the order written): {', '.join(explored)}")
    if config.iterations != 1:
        raise ConfigError(f"[{table}] replay_from needs iterations = 1: later iterations explore newer models")
    return {**section, "replay_from": str(Path(config.output) / source / "iter1" / "explore")}


def _walk_settings(config: ExploreConfig) -> dict[str, Any]:
    """The settings that only rising and fixed walks have (None for ipr and outcome)."""
    walked = config.strategy in ("rising", "fixed")
    return {"anchor": config.anchor if walked else None, "rise_at_max": config.rise_at_max if walked else None}


_METHOD_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_STRATEGY_FOLDERS = ("rising", "fixed", "ipr", "outcome")
_RUN_ENTRIES = ("sft", "eval-sft", "eval-sft-equal", "stages", "experts", *_STRATEGY_FOLDERS)  # taken in RUN/


def _explorations(config: PipelineConfig) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method name, strategy, table for error messages, [explore] settings) of each exploring method:
    the strategies with the shared [explore] table, then each variant with its table on top of it."""
    found = [(strategy, strategy, "explore", config.explore) for strategy in config.strategies]
    for name, variant in config.variants.items():
        table = f"variants.{name}"
        if not _METHOD_NAME.fullmatch(name):
            raise ConfigError(f"[{table}]: a method name is lower-case letters, digits, '-', '_' or '.'")
        if "strategy" not in variant:
            raise ConfigError(f"[{table}] needs a strategy (rising, fixed, ipr or outcome)")
        # A strategy left out of `strategies` may come back as a variant of its own name (e.g. a replayed ipr).
        own_folder = name == variant["strategy"] and name in _STRATEGY_FOLDERS
        if name in config.strategies or (name in _RUN_ENTRIES and not own_folder):
            raise ConfigError(f"[{table}]: {name!r} is already a method or a folder of this run; name the variant apart")
        if config.equal_pairs and name.endswith("-equal"):
            raise ConfigError(f"[{table}]: with equal_pairs, METHOD-equal names the equal-pairs arm's methods; "
                              f"name the variant apart")
        settings = {key: value for key, value in variant.items() if key != "strategy"}
        found.append((name, variant["strategy"], table, {**config.explore, **settings}))
    return found


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Run (or resume) every stage; the run directory is held throughout (rro.folder_lock), and
    each stage holds its own folder inside it as well."""
    stages, methods = plan(config)  # every stage's config is checked before anything is written
    with hold_folder(config.output):
        return _run_stages(config, stages, methods)


def _run_stages(config: PipelineConfig, stages: list[Stage], methods: list[dict[str, Any]]) -> dict[str, Any]:
    run = Path(config.output)
    markers = run / "stages"
    markers.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / "pipeline.json", config.model_dump(mode="json"))
    machine = this_machine()
    for number, stage in enumerate(stages, 1):
        marker = markers / f"{stage.name}.json"
        wanted = stage.config.model_dump(mode="json")
        if marker.exists():
            if not _same_settings(json.loads(marker.read_text())["config"], stage.config):
                raise ConfigError(f"stage {stage.name} in {run} finished with other settings; "
                                  f"use another run directory (later stages depend on it)")
            console.print(f"[dim]{number}/{len(stages)} {stage.name}: done[/dim]")
            continue
        console.print(f"[bold]{number}/{len(stages)} {stage.name}[/bold]")
        if isinstance(stage.config, TrainConfig):
            release_engines()  # training needs the memory an in-process engine (vLLM) holds
        started, cpu_started = time.time(), time.process_time()
        stage.run(stage.config)
        # CPU seconds and the load beside the wall time: on a machine shared with other work, wall
        # time grows with the load and CPU time much less (bench/quickstart_stages.py prints them).
        write_json_atomic(marker, {"config": wanted, "seconds": round(time.time() - started, 1),
                                   "cpu_seconds": round(time.process_time() - cpu_started, 1),
                                   "load": round(os.getloadavg()[0], 2), "machine": machine})
    results = results_record(config, methods)
    write_json_atomic(run / "results.json", results)
    return results


def this_machine() -> dict[str, Any]:
    """Where a stage ran, for its marker: a resumed run may finish on another machine, and machines
    differ 2-4x in speed and in precision (`auto` is bf16 only on a CPU with native bf16)."""
    import torch

    from rro.policy.hf import cpu_description, cpu_supports_bf16

    return {"cpu": cpu_description(), "cores": os.cpu_count(), "native_bf16": cpu_supports_bf16(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def results_record(config: PipelineConfig, methods: list[dict[str, Any]]) -> dict[str, Any]:
    """What RUN/results.json holds: the run's task settings and its methods with their folders."""
    return {"run": str(config.output), "env": config.env, **config.run_wide_options(), "methods": methods}


def results_so_far(run: Path) -> dict[str, Any]:
    """The results record of a run that has not finished (running, or stopped), from its
    pipeline.json and stage markers: the methods whose evaluation has finished, and under
    `unfinished` the ones still to come, so that a report covers a long run as far as it has got."""
    try:
        config = PipelineConfig.model_validate_json((run / "pipeline.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError) as err:
        raise ConfigError(f"{run}/pipeline.json cannot be read ({str(err).splitlines()[0]}): report the run with "
                          f"the rro that started it, or once it has finished") from None
    stages, methods = plan(config)
    finished = {str(stage.config.output) for stage in stages if (run / "stages" / f"{stage.name}.json").exists()}
    results = results_record(config, [method for method in methods if method["eval"] in finished])
    results["unfinished"] = [method["method"] for method in methods if method["eval"] not in finished]
    return results
