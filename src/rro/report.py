"""`rro report RUN_DIR [RUN_DIR ...] -o OUT`: the comparison that RRO's claims are about.

Reads each run's `results.json` (written by `rro run`) and the outputs it points to, and writes:

- `results.md` / `results.csv`: per method, average reward ×100 with a 95% bootstrap interval over
  tasks, success rate, candidates per step (mean, max), rollouts, generated tokens and pairs of its
  exploration, the pairs its DPO trained on, and exploration and training wall time;
- `paired.md`: each method minus SFT on the same test tasks (paired bootstrap interval), which is
  what can be read when single intervals overlap;
- `cost.md`: pairs and test reward above SFT per million generated exploration tokens;
- `steps.md`: where each rule's candidates went: the steps that stopped before K, and of those
  that drew all K, the ones that drew a single action K times or had every value at the floor;
- `candidates_per_step.png` (the paper's sampling-efficiency figure), `cost_vs_reward.png`, and
  `rising_by_third.png` (share of rising steps in the first, middle and last third of the explored
  trajectories: the paper's reward-trend analysis);
- `index.html`: all of the above on one self-contained page, with a browser of the explored walks
  (`rro.report_page`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from rro.config import ExploreConfig, value_when_absent
from rro.explore.records import read_walks
from rro.folder_lock import hold_folder
from rro.jsonl import read_jsonl
from rro.report_page import write_page

COLUMNS = ["run", "method", "tasks", "avg_reward", "ci_low", "ci_high", "success_rate", "cand_per_step_mean",
           "cand_per_step_max", "rollouts", "generated_tokens", "pairs", "dpo_pairs", "explore_s", "train_s"]


def interval(values: list[float], resamples: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (a constant sample is its own interval)."""
    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.all(data == data[0]):
        mean = float(data.mean()) if len(data) else float("nan")
        return mean, mean
    result = bootstrap((data,), np.mean, n_resamples=resamples, confidence_level=0.95, method="percentile",
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: has this stage of the run finished?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # not JSON, or not UTF-8
        raise ValueError(f"{path} is unreadable ({err}): rerun the stage that writes it") from None


def read_results(run: Path) -> dict[str, Any]:
    """A run's `results.json`, its folders re-rooted at `run`: a run that was moved or copied since
    it ran (e.g. a record committed without its weights) reports from where it is now. A run that
    has not finished has no results.json yet: its finished methods are read from its pipeline.json
    and stage markers (`unfinished` names the others)."""
    if (run / "results.json").exists():
        results = _json(run / "results.json")
    elif (run / "pipeline.json").exists():
        from rro.pipeline import results_so_far
        results = results_so_far(run)
    else:
        raise FileNotFoundError(f"{run} is not a run directory of `rro run` (it has neither results.json nor "
                                f"pipeline.json)")
    recorded = Path(results["run"])

    def here(folder: str) -> str:
        try:
            return str(run / Path(folder).relative_to(recorded))
        except ValueError:  # not inside the run (e.g. an SFT model from elsewhere): as recorded
            return folder

    for method in results["methods"]:
        for key in ("eval", "sft"):
            if method.get(key):
                method[key] = here(method[key])
        for key in ("explore", "dpo"):
            if key in method:
                method[key] = [here(folder) for folder in method[key]]
    return results


def _rewards(eval_dir: Path) -> dict[int, float]:
    """Reward per task of an evaluation, ×100."""
    return {record["task_id"]: 100.0 * record["reward"] for record in read_jsonl(eval_dir / "episodes.jsonl")}


def _train_seconds(folders: list[str]) -> float:
    return sum(_json(Path(folder) / "rro-train.json").get("train_seconds", 0.0) for folder in folders)


def method_rows(run_name: str, results: dict[str, Any], resamples: int
                ) -> tuple[list[dict[str, Any]], dict[str, dict[int, float]], dict[str, Any]]:
    """One row per method of a run (its name and `read_results`), each method's per-task rewards,
    and its exploration records (once per exploration: not again for the equal-pairs arm)."""
    rows, rewards, explorations = [], {}, {}
    for method in results["methods"]:
        per_task = _rewards(Path(method["eval"]))
        summary = _json(Path(method["eval"]) / "summary.json")
        low, high = interval(list(per_task.values()), resamples)
        row = {"run": run_name, "method": method["method"], "tasks": len(per_task),
               "avg_reward": summary["avg_reward"], "ci_low": low, "ci_high": high,
               "success_rate": summary["success_rate"], "cand_per_step_mean": None, "cand_per_step_max": None,
               "rollouts": 0, "generated_tokens": 0, "pairs": 0, "explore_s": 0.0,
               "train_s": _train_seconds([method["sft"], *method.get("dpo", [])]),
               # The pairs DPO trained on: fewer than found in the equal-pairs arm, or where pairs
               # did not fit max_length.
               "dpo_pairs": sum(_json(Path(folder) / "rro-train.json")["records"] for folder in method["dpo"])
               if method.get("dpo") else None}
        stats = [_json(Path(folder) / "stats.json") for folder in method.get("explore", [])]
        if stats:
            histogram: Counter = Counter()
            for block in stats:
                histogram.update({int(k): v for k, v in block["candidates_per_step"]["histogram"].items()})
            steps = sum(histogram.values())
            row.update(
                cand_per_step_mean=sum(k * v for k, v in histogram.items()) / steps if steps else 0.0,
                cand_per_step_max=max(histogram, default=0),
                rollouts=sum(b["rollouts"] for b in stats),
                generated_tokens=sum(b["generated_tokens"] for b in stats),
                pairs=sum(b["pairs"] for b in stats),
                # None for a replayed exploration (`replay_from`): nothing ran, so no time was measured.
                explore_s=None if any(b["wall_seconds"] is None for b in stats) else sum(b["wall_seconds"] for b in stats),
            )
            if not method.get("equal_pairs"):  # the equal-pairs arm's methods reuse their explorations: shown once
                walks = [w for folder in method["explore"] for w in read_walks(Path(folder))]
                max_candidates = max(_json(Path(folder) / "config.json")["max_candidates"] for folder in method["explore"])
                explorations[method["method"]] = {"histogram": histogram, "walks": walks,
                                                  "candidates": where_candidates_went(walks, max_candidates)}
        rows.append(row)
        rewards[method["method"]] = per_task
    return rows, rewards, explorations


def rising_by_third(walks: list[dict[str, Any]]) -> list[float | None]:
    """Share of rising steps among the steps in the first, middle and last third of each walk."""
    counts = [[0, 0], [0, 0], [0, 0]]
    for walk in walks:
        steps = [step for step in walk["steps"] if step.get("rose") is not None]
        for index, step in enumerate(steps):
            third = min(2, 3 * index // len(steps))
            counts[third][0] += bool(step["rose"])
            counts[third][1] += 1
    return [rose / total if total else None for rose, total in counts]


def where_candidates_went(walks: list[dict[str, Any]], max_candidates: int) -> dict[str, Any] | None:
    """What the steps that a rule judged (rising, fixed) spent their candidates on: how many stopped
    before K and how many drew all K, and of those, how many drew one action K times (a repeat has
    the first draw's value: it can neither rise nor make a pair) and how many had every value at 0
    against a bar of 0 (nothing can rise above the floor), and how many had either. None when no step
    was judged by a rule."""
    steps = [step for walk in walks for step in walk["steps"] if step.get("rose") is not None]
    if not steps:
        return None
    drew_all = [step for step in steps if step["candidates"] >= max_candidates]
    one_action = [step["distinct_actions"] == 1 for step in drew_all]
    at_floor = [step.get("prev_value") == 0 and not any(step["q_values"]) for step in drew_all]
    return {
        "steps": len(steps),
        "max_candidates": max_candidates,
        "stopped_before_k": len(steps) - len(drew_all),
        "drew_k": len(drew_all),
        "drew_k_one_action": sum(one_action),
        "drew_k_all_at_floor": sum(at_floor),
        # Either way no draw of the step could rise, so the rule had no way to stop before K.
        "drew_k_either": sum(a or b for a, b in zip(one_action, at_floor)),
        "distinct_actions_per_step": sum(step["distinct_actions"] for step in steps) / len(steps),
    }


def steps_table(explorations: dict[str, dict[str, Any]]) -> str:
    def share(count: int, total: int) -> str:
        return f"{count} ({100 * count / total:.0f}%)" if total else str(count)

    lines = ["| method | judged steps | K | stopped before K | drew K | … one action K times | … every value 0, bar 0 "
             "| … either | distinct actions / step |", "|---|---|---|---|---|---|---|---|---|"]
    for name, block in explorations.items():
        if (c := block.get("candidates")) is None:
            continue
        lines.append(f"| {_cell(name)} | {c['steps']} | {c['max_candidates']} | {share(c['stopped_before_k'], c['steps'])} "
                     f"| {share(c['drew_k'], c['steps'])} | {share(c['drew_k_one_action'], c['drew_k'])} "
                     f"| {share(c['drew_k_all_at_floor'], c['drew_k'])} | {share(c['drew_k_either'], c['drew_k'])} "
                     f"| {c['distinct_actions_per_step']:.2f} |")
    return "\n".join(lines)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: a `|` in it (a method or run name) would start a new column."""
    return str(text).replace("|", "\\|")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | method | tasks | avg reward ×100 (95% CI) | success % | cand/step mean | max | rollouts "
             "| gen. tokens | pairs | DPO on | explore s | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {_cell(r['run'])} | {_cell(r['method'])} | {r['tasks']} | {r['avg_reward']:.1f} ({r['ci_low']:.1f}–{r['ci_high']:.1f}) "
            f"| {r['success_rate']:.1f} | {_fmt(r['cand_per_step_mean'])} | {_fmt(r['cand_per_step_max'])} "
            f"| {r['rollouts']} | {r['generated_tokens']} | {r['pairs']} | {_fmt(r['dpo_pairs'])} | {_fmt(r['explore_s'], 0)} "
            f"| {r['train_s']:.0f} |")
    return "\n".join(lines)


def baseline_of(method: str, methods: Iterable[str]) -> str:
    """The SFT evaluation a method is measured against: the equal-pairs arm's methods (METHOD-equal)
    against the arm's own evaluation of its starting model (`sft-equal`, rro.pipeline), the others
    (and sft-equal itself) against `sft`."""
    if method.endswith("-equal") and method != "sft-equal" and "sft-equal" in methods:
        return "sft-equal"
    return "sft"


def cost_table(rows: list[dict[str, Any]]) -> str:
    """Cost at matched tokens: what each method's exploration bought per million tokens it generated
    (pairs, and test reward above its SFT row, `baseline_of`), so methods that explore at different
    costs compare on equal compute. Methods that did not explore (SFT) have no row."""
    lines = ["| run | method | exploration tokens | pairs | pairs / M tokens | avg reward ×100 | − SFT "
             "| − SFT / M tokens |", "|---|---|---|---|---|---|---|---|"]
    sft_rows = {(r["run"], r["method"]): r["avg_reward"] for r in rows if r["method"] in ("sft", "sft-equal")}
    for r in rows:
        if not r["generated_tokens"]:
            continue
        millions = r["generated_tokens"] / 1e6
        in_run = [method for run, method in sft_rows if run == r["run"]]
        baseline = sft_rows.get((r["run"], baseline_of(r["method"], in_run)))
        gain = None if baseline is None else r["avg_reward"] - baseline
        lines.append(f"| {_cell(r['run'])} | {_cell(r['method'])} | {r['generated_tokens']} | {r['pairs']} "
                     f"| {r['pairs'] / millions:.0f} | {r['avg_reward']:.1f} | {_fmt(gain, 1)} "
                     f"| {_fmt(None if gain is None else gain / millions, 1)} |")
    return "\n".join(lines)


def paired_table(run: str, rewards: dict[str, dict[int, float]], resamples: int) -> list[str]:
    """Each method against its SFT evaluation (`baseline_of`), task by task."""
    lines = []
    for method in rewards:
        baseline = baseline_of(method, rewards)
        if method != "sft" and baseline in rewards:
            lines += _paired_row(run, method, baseline, rewards, resamples)
    return lines


def rro_against_baselines(run: str, methods: list[dict[str, Any]], rewards: dict[str, dict[int, float]],
                          resamples: int) -> list[str]:
    """Each RRO method (strategy rising) against each other exploring method of its arm (the
    equal-pairs arm's against the arm's), task by task: RRO's claim is a reward at least level
    with theirs at a lower cost."""
    explored = [m for m in methods if m.get("strategy") and m["method"] in rewards]
    lines = []
    for rro in (m for m in explored if m["strategy"] == "rising"):
        for other in explored:
            if other["strategy"] != "rising" and other.get("equal_pairs", False) == rro.get("equal_pairs", False):
                lines += _paired_row(run, rro["method"], other["method"], rewards, resamples)
    return lines


def _paired_row(run: str, method: str, baseline: str, rewards: dict[str, dict[int, float]], resamples: int) -> list[str]:
    """`method − baseline` over their common tasks: mean ×100, 95% bootstrap interval, tasks better and worse."""
    common = sorted(set(rewards[method]) & set(rewards[baseline]))
    differences = [rewards[method][t] - rewards[baseline][t] for t in common]
    if not differences:
        return []
    low, high = interval(differences, resamples)
    better, worse = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    return [f"| {_cell(run)} | {_cell(method)} − {_cell(baseline)} | {len(common)} "
            f"| {np.mean(differences):+.1f} ({low:+.1f} to {high:+.1f}) | {better} | {worse} |"]


def _plots(out: Path, rows: list[dict[str, Any]], explorations: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, MaxNLocator

    def grouped_bars(series: dict[str, dict[float, float]], xlabel: str, ylabel: str, title: str, name: str,
                     ticks: list[str] | None = None) -> None:
        """One bar per strategy at each x, side by side."""
        figure, axis = plt.subplots(figsize=(6, 4))
        width = 0.8 / len(series)
        for offset, (label, heights) in enumerate(series.items()):
            xs = sorted(heights)
            axis.bar([x + offset * width - 0.4 + width / 2 for x in xs], [heights[x] for x in xs], width, label=label)
        if ticks:
            axis.set_xticks(range(len(ticks)), ticks)
        else:  # x counts something (candidates): a tick at each count drawn, whole numbers only
            axis.set_xticks(sorted({x for heights in series.values() for x in heights}))
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.set_title(title)
        axis.legend()
        figure.tight_layout()
        figure.savefig(out / name, dpi=120)
        plt.close(figure)

    if explorations:
        shares = {label: {k: v / sum(block["histogram"].values()) for k, v in block["histogram"].items()}
                  for label, block in explorations.items()}
        grouped_bars(shares, "candidates sampled at a step", "share of steps", "Sampling efficiency",
                     "candidates_per_step.png")
        thirds = {label: {i: share or 0.0 for i, share in enumerate(rising_by_third(block["walks"]))}
                  for label, block in explorations.items()}
        grouped_bars(thirds, "third of the explored trajectory", "share of rising steps",
                     "Reward trend along explored trajectories", "rising_by_third.png", ["initial", "middle", "final"])

    figure, axis = plt.subplots(figsize=(6, 4))
    for r in rows:
        axis.errorbar(r["generated_tokens"], r["avg_reward"], yerr=[[r["avg_reward"] - r["ci_low"]],
                      [r["ci_high"] - r["avg_reward"]]], fmt="o", capsize=3)
        axis.annotate(f"{r['run']}/{r['method']}" if len({x['run'] for x in rows}) > 1 else r["method"],
                      (r["generated_tokens"], r["avg_reward"]), textcoords="offset points", xytext=(5, 5))
    axis.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))  # a token count
    axis.xaxis.set_major_formatter(EngFormatter(sep=""))  # 300k, not 300000 (six-digit labels collide)
    axis.set_xlabel("exploration cost (generated tokens)")
    axis.set_ylabel("test average reward ×100")
    axis.set_title("Cost vs reward")
    figure.tight_layout()
    figure.savefig(out / "cost_vs_reward.png", dpi=120)
    plt.close(figure)


def write_report(runs: list[Path], out: Path, resamples: int = 2000) -> str:
    """Tables, plots and the page of `runs` into `out` (held while written: rro.folder_lock)."""
    named_results = [(Path(run).name, read_results(Path(run))) for run in runs]  # missing runs fail before `out` exists
    with hold_folder(out):
        return _write_report(named_results, out, resamples)


def _write_report(named_results: list[tuple[str, dict[str, Any]]], out: Path, resamples: int) -> str:
    rows, paired, between, explorations = [], [], [], {}
    for run_name, results in named_results:
        run_rows, rewards, run_explorations = method_rows(run_name, results, resamples)
        rows += run_rows
        paired += paired_table(run_name, rewards, resamples)
        between += rro_against_baselines(run_name, results["methods"], rewards, resamples)
        prefix = f"{run_name}/" if len(named_results) > 1 else ""
        explorations.update({prefix + name: block for name, block in run_explorations.items()})
    table = markdown_table(rows)
    unfinished = [f"{run_name} has not finished: not yet in this report: {', '.join(results['unfinished'])}"
                  for run_name, results in named_results if results.get("unfinished")]
    (out / "results.md").write_text(table + "\n")
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    header = ["| run | difference | tasks | mean ×100 (95% CI) | tasks better | tasks worse |", "|---|---|---|---|---|---|"]
    # Each method against SFT, then RRO against each baseline of its arm (one table: the same columns).
    paired_lines = [*header, *paired, *between]
    (out / "paired.md").write_text("\n".join(paired_lines) + "\n")
    tables = {"results": ("Results", table),
              "paired": ("Paired differences: with SFT, and RRO with each baseline", "\n".join(paired_lines)),
              "cost": ("Cost at matched tokens", cost_table(rows)),
              "steps": ("Where each rule's candidates went", steps_table(explorations))}
    for table_id in ("cost", "steps"):
        (out / f"{table_id}.md").write_text(tables[table_id][1] + "\n")
    thirds = {name: rising_by_third(block["walks"]) for name, block in explorations.items()}
    (out / "rising_by_third.json").write_text(json.dumps(thirds, indent=2))
    _plots(out, rows, explorations)
    write_page(out, named_results, tables, notes=unfinished)
    return "\n".join([*unfinished, table, "", *paired_lines])


# --- cost against competence --------------------------------------------------------------------


def competence_points(explorations: list[Path]) -> list[dict[str, Any]]:
    """One point per `rro explore` folder (rising or fixed, prev0 = "value"): the explored model's
    competence on those tasks — its mean V(s0), the Monte Carlo value of the start states — and
    what exploring cost there. Explore the same tasks from checkpoints of increasing competence to
    see where reward-rising exploration saves and where it cannot."""
    points = []
    for folder in map(Path, explorations):
        config, stats = _json(folder / "config.json"), _json(folder / "stats.json")
        if config["strategy"] not in ("rising", "fixed") or config["prev0"] != "value":
            raise ValueError(f"{folder}: a competence point needs a rising or fixed exploration with prev0 = 'value' "
                             f"(its V(s0) estimates); this one is {config['strategy']} with prev0 = {config['prev0']!r}")
        walks = read_walks(folder)
        points.append({
            "exploration": str(folder), "model": config["model"], "strategy": config["strategy"],
            "anchor": config.get("anchor", "policy"),
            "rise_at_max": config.get("rise_at_max", value_when_absent(ExploreConfig.model_fields["rise_at_max"])),
            "tasks": len(walks), "mean_v0": float(np.mean([walk["values"][0] for walk in walks])),
            "candidates_per_step": stats["candidates_per_step"]["mean"],
            "rollouts_per_pair": stats["rollouts_per_pair"], "pairs": stats["pairs"], "rollouts": stats["rollouts"],
        })
    return points


def competence_table(points: list[dict[str, Any]]) -> str:
    """The competence points as a markdown table, in the order the explorations were given."""
    lines = ["| model | strategy | anchor | ceiling | mean V(s0) | cand/step | rollouts/pair | pairs |",
             "|---|---|---|---|---|---|---|---|"]
    for p in points:
        per_pair = "–" if p["rollouts_per_pair"] is None else f"{p['rollouts_per_pair']:.1f}"
        lines.append(f"| {p['model']} | {p['strategy']} | {p['anchor']} | {'on' if p['rise_at_max'] else 'off'} "
                     f"| {p['mean_v0']:.2f} | {p['candidates_per_step']:.2f} | {per_pair} | {p['pairs']} |")
    return "\n".join(lines)


def write_competence_plot(explorations: list[Path], out: Path) -> list[dict[str, Any]]:
    """`OUT/competence.png` (candidates per step and rollouts per pair against mean V(s0), one line
    per strategy, anchor and ceiling rule) and the numbers in `OUT/competence.json`."""
    return plot_competence(competence_points(explorations), out)


def plot_competence(points: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """The competence plot and JSON of points from `competence_points` or replays
    (rro.explore.replay.competence_point)."""
    import matplotlib

    matplotlib.use("Agg")
    with hold_folder(out):
        _plot_competence(points, out)
    return points


def competence_series(points: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The plot's lines: points of one strategy, anchor and ceiling rule (one colour), and of one model
    family (one marker; a point's optional "family", e.g. two sweeps plotted together), by mean V(s0).
    Families are not joined: their checkpoints are not one sequence."""
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for point in points:
        label = f"{point['strategy']}, {point['anchor']} anchor" + (", ceiling" if point["rise_at_max"] else "") + \
            (" (replayed)" if point.get("replayed") else "")
        series.setdefault((label, point.get("family", "")), []).append(point)
    return {key: sorted(members, key=lambda p: p["mean_v0"]) for key, members in series.items()}


def _plot_competence(points: list[dict[str, Any]], out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    (out / "competence.json").write_text(json.dumps(points, indent=2))
    series = competence_series(points)
    labels = list(dict.fromkeys(label for label, _ in series))
    families = list(dict.fromkeys(family for _, family in series))
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    markers = {family: "os^Dv"[i % 5] for i, family in enumerate(families)}
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6))
    for (label, family), members in series.items():
        style = {"color": colours[label], "marker": markers[family], "linestyle": "-"}
        xs = [p["mean_v0"] for p in members]
        left.plot(xs, [p["candidates_per_step"] for p in members], **style)
        with_pairs = [p for p in members if p["rollouts_per_pair"] is not None]  # no pair: no cost per pair
        right.plot([p["mean_v0"] for p in with_pairs], [p["rollouts_per_pair"] for p in with_pairs], **style)
    handles = [Line2D([], [], color=colours[label], marker="o", label=label) for label in labels]
    if len(families) > 1:
        handles += [Line2D([], [], color="grey", marker=markers[family], linestyle="none", label=family or "other")
                    for family in families]
    # Checkpoints can share a mean V(s0) (every weak one sits at 0): name each at its first point.
    names = {p["model"]: Path(p["model"]).name for p in points}
    if len(set(names.values())) < len(names):
        names = {model: model for model in names}
    for model in names:
        first = next(p for members in series.values() for p in members if p["model"] == model)
        left.annotate(names[model], (first["mean_v0"], first["candidates_per_step"]), textcoords="offset points",
                      xytext=(6, -3), fontsize=8)
    left.margins(x=0.15)  # room for the names
    left.set(xlabel="competence: mean V(s0) on the explored tasks", ylabel="candidates per step",
             title="Sampling cost against competence")
    right.set(xlabel="competence: mean V(s0) on the explored tasks", ylabel="rollouts per pair",
              title="Cost of a pair against competence")
    figure.legend(handles=handles, loc="lower center", ncol=2, fontsize=9)  # off the points
    figure.tight_layout(rect=(0, 0.02 + 0.05 * ((len(handles) + 1) // 2), 1, 1))
    figure.savefig(out / "competence.png", dpi=120)
    plt.close(figure)
