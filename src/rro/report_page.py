"""`OUT/index.html`: the report as one page to click through, and a browser of the explored walks.

One self-contained file: the report's tables, the plots embedded as base64 PNG, and
every exploration's walks embedded as JSON, read by a small vanilla script. No server, no network,
no external script or font: it opens from disk in any browser, and can be mailed as it is.

The walk browser answers "why did RRO stop here?" and "what did the rejected action look like?":
per task, per step, the candidates in the order they were drawn with their Q values, the bar they
had to rise above, which one rose (or that none did), the pairs made, the rollouts spent, and the
text of every candidate and of the chosen path's observations, collapsible. It renders one task
at a time and lists tasks a page at a time, so a run of thousands of tasks stays fast.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from rro.explore.records import read_walks

# What the page keeps of a step record (the rest is cost detail already in steps.jsonl).
_STEP_FIELDS = ("step", "candidates", "q_values", "prev_value", "rose", "bar", "chosen", "chosen_q", "rollouts", "cache_hits",
                "rollouts_saved", "exact", "env_steps", "candidate_generated_tokens", "rollout_generated_tokens",
                "candidate_turns", "candidate_actions")


def _explorations(runs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every exploration folder of the runs, once each (a method of iteration 2 lists iteration 1's too)."""
    explorations, seen = [], set()
    for run_name, results in runs:
        for method in results["methods"]:
            for folder in map(Path, method.get("explore", [])):
                if folder in seen or not (folder / "walks.jsonl").exists():
                    continue
                seen.add(folder)
                config_file = folder / "config.json"
                config = json.loads(config_file.read_text()) if config_file.exists() else {}
                explorations.append({
                    "label": f"{run_name} / {folder.parent.parent.name} / {folder.parent.name}" if len(runs) > 1
                    else f"{folder.parent.parent.name} / {folder.parent.name}",
                    "strategy": config.get("strategy", ""),
                    "margin": config.get("margin"),
                    "on_no_rise": config.get("on_no_rise"),
                    "walks": [_walk(record) for record in read_walks(folder)],
                })
    return explorations


def _walk(record: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a walk, without repeating a text: a pair's side that is one of its
    step's candidates is named by its place among them, and a rising or fixed walk's chosen turns
    are its steps' chosen candidates."""
    steps = [{key: step[key] for key in _STEP_FIELDS if key in step} for step in record["steps"]]
    by_step = {step.get("step"): step.get("candidate_turns") or [] for step in steps}
    pairs = []
    for pair in record.get("pairs", []):
        candidates = by_step.get(pair.get("step"), [])
        entry = {"step": pair.get("step"), "q_chosen": pair.get("q_chosen"), "q_rejected": pair.get("q_rejected")}
        for side in ("chosen", "rejected"):
            text = _text(pair.get(side, []))
            if text in candidates:
                entry[f"{side}_k"] = candidates.index(text)
            else:
                entry[side] = text
        pairs.append(entry)
    recorded = bool(steps) and all("candidate_turns" in step for step in steps)
    return {
        "task_id": record["task_id"],
        "instruction": record.get("instruction"),
        "end": record.get("end", ""),
        "reward": record.get("reward"),
        "values": record.get("values", []),
        "initial_rollouts": (record.get("initial_cost") or {}).get("rollouts", 0),
        "turns": [] if recorded and record.get("strategy") in ("rising", "fixed") else record.get("turns", []),
        "observations": record.get("observations", []),
        "steps": steps,
        "pairs": pairs,
    }


def _text(messages: list[dict[str, str]]) -> str:
    """One agent turn as written; a trajectory's rest (outcome-level pairs) turn by turn."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role']}] {m['content']}" for m in messages)


def _markdown_table(lines: list[str], table_id: str) -> str:
    """A markdown table (header, rule, rows) as an HTML table."""
    def cells(line: str) -> list[str]:  # split at the pipes that are not escaped (`\|` is one in a cell)
        inner = line.strip().removeprefix("|").removesuffix("|")
        return [html.escape(cell.strip().replace("\\|", "|")) for cell in re.split(r"(?<!\\)\|", inner)]

    if len(lines) < 2:
        return ""
    head = "".join(f"<th>{cell}</th>" for cell in cells(lines[0]))
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells(line)) + "</tr>" for line in lines[2:])
    if not body:
        body = f'<tr><td colspan="{len(cells(lines[0]))}">none</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _plots(out: Path) -> str:
    figures = []
    for png in sorted(out.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        figures.append(f'<figure><img alt="{html.escape(png.stem)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(png.name)}</figcaption></figure>")
    return "\n".join(figures)


def _marked_nonfinite(data: Any) -> Any:
    """`data` with NaN and infinities as {"nonfinite": "NaN"} (JSON has no such numbers: a bare
    NaN would stop the browser parsing the whole walk); the page's script turns them back."""
    if isinstance(data, float) and not math.isfinite(data):
        return {"nonfinite": str(data).replace("nan", "NaN").replace("inf", "Infinity")}
    if isinstance(data, dict):
        return {key: _marked_nonfinite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_marked_nonfinite(value) for value in data]
    return data


def _embedded_json(data: Any) -> str:
    """JSON that can sit inside a <script> element: no `</script>` or `<!--` can appear in it."""
    return json.dumps(_marked_nonfinite(data), separators=(",", ":"), allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _walk_data(explorations: list[dict[str, Any]]) -> tuple[str, str]:
    """The walk browser's data: an index (a summary line per task) and one JSON element per walk,
    which the page parses only when that task is opened (a run of thousands of tasks loads fast)."""
    index, elements = [], []
    for e, exploration in enumerate(explorations):
        walks = exploration.pop("walks")
        exploration["tasks"] = [[walk["task_id"], len(walk["steps"]), sum(s.get("candidates", 0) for s in walk["steps"]),
                                 len(walk["pairs"]), walk["reward"], walk["end"]] for walk in walks]
        index.append(exploration)
        elements += [f'<script type="application/json" id="w{e}-{i}">{_embedded_json(walk)}</script>'
                     for i, walk in enumerate(walks)]
    return _embedded_json(index), "\n".join(elements)


def write_page(out: Path, runs: list[tuple[str, dict[str, Any]]], tables: dict[str, tuple[str, str]],
               notes: list[str] = ()) -> Path:
    """Write `out/index.html` from the report's tables (`{id: (heading, markdown table)}`), the plots
    already in `out` and the walks of the runs (each run's name and its `results.json`, as
    `rro.report.read_results` reads it)."""
    title = "rro report: " + ", ".join(run_name for run_name, _ in runs)
    walk_index, walk_elements = _walk_data(_explorations(runs))
    sections = [f"<h2>{html.escape(heading)}</h2>\n{_markdown_table(table.splitlines(), f'{table_id}-table')}"
                for table_id, (heading, table) in tables.items()]
    parts = {
        "TITLE": html.escape(title),
        "NOTES": "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes),
        "TABLES": "\n".join(sections),
        "PLOTS": _plots(out),
        "SCRIPT": _SCRIPT,
        "INDEX": walk_index,
        "WALKS": walk_elements,
    }
    # One pass over the template: nothing inserted is searched for placeholders again.
    page = re.sub(r"@([A-Z]+)@", lambda match: parts[match.group(1)], _TEMPLATE)
    path = out / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1300px; padding: 0 1em 3em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
figure { display: inline-block; margin: .5em; } figure img { max-width: 600px; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #666; }
#browser { display: flex; gap: 1em; align-items: flex-start; }
#sidebar { flex: 0 0 330px; position: sticky; top: 0; max-height: 100vh; overflow: auto; }
#sidebar select, #sidebar input[type=search] { width: 100%; box-sizing: border-box; margin-bottom: .4em; }
#task-list { list-style: none; padding: 0; margin: .4em 0; }
#task-list button { width: 100%; text-align: left; border: 1px solid #ddd; background: #fff; padding: 3px 6px;
  margin-bottom: 2px; cursor: pointer; font: inherit; font-size: .9em; }
#task-list button.selected { background: #e6efff; border-color: #8ab; }
#walk { flex: 1; min-width: 0; }
.step { border: 1px solid #ddd; border-radius: 4px; padding: .5em .8em; margin: .8em 0; }
.step h3 { margin: 0 0 .3em; font-size: 1em; }
.rose { background: #e3f6e3; } .chosen { font-weight: 600; } .paired { background: #fbeaea; }
.note { background: #fff6d6; padding: .4em .6em; } .muted { color: #777; } .tag { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: .85em; }
.tag.yes { background: #cdeccd; } .tag.no { background: #f3d9d9; }
pre { white-space: pre-wrap; word-break: break-word; background: #f8f8f8; padding: .4em; margin: .2em 0; }
details > summary { cursor: pointer; color: #246; }
</style>
</head>
<body>
<h1>@TITLE@</h1>
<p class="muted">One file, no network: the tables, plots and explored walks are all inside it.</p>
@NOTES@
@TABLES@
<h2>Plots</h2>
<div id="plots">
@PLOTS@
</div>
<h2>Explored walks</h2>
<div id="browser">
  <div id="sidebar">
    <select id="exploration" aria-label="exploration"></select>
    <input id="filter" type="search" placeholder="filter: task id or end (submitted, max_steps...)">
    <label><input id="with-pairs" type="checkbox"> only tasks that made pairs</label>
    <div id="pager"></div>
    <ol id="task-list"></ol>
  </div>
  <div id="walk"><p class="muted">No exploration in these runs.</p></div>
</div>
<script type="application/json" id="walk-index">@INDEX@</script>
@WALKS@
<script>
@SCRIPT@
</script>
</body>
</html>
"""

_SCRIPT = r"""
"use strict";
// The index: per exploration, its label and settings and one summary row per task
// [task_id, steps, candidates, pairs, reward, end]. A walk's own data is parsed when it is opened.
// NaN and infinities travel as {"nonfinite": "NaN"} (JSON has no such numbers) and show as NaN, Infinity.
const revive = (key, value) => value !== null && typeof value === "object" && typeof value.nonfinite === "string"
  && Object.keys(value).length === 1 ? Number(value.nonfinite) : value;
const EXPLORATIONS = JSON.parse(document.getElementById("walk-index").textContent, revive);
const PAGE_SIZE = 100;
const ENDS = {
  submitted: "the chosen action ended the episode (a terminal action such as submit or Buy Now)",
  max_steps: "the walk reached max_steps without a terminal action (scores 0)",
  invalid: "the agent wrote too many malformed turns in a row",
  no_rise: "no candidate rose above the bar and on_no_rise = \"stop\" ended the walk",
};
const state = { exploration: 0, page: 0, task: null };  // task: its position in the exploration

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const fmt = (x, digits = 3) => (x === null || x === undefined) ? "–" : Number(x).toFixed(digits);
const collapsible = (label, text) => el("details", {}, el("summary", {}, label), el("pre", {}, text ?? ""));
const loadWalk = (e, i) => JSON.parse(document.getElementById(`w${e}-${i}`).textContent, revive);

function visibleTasks() {
  const query = document.getElementById("filter").value.trim().toLowerCase();
  const withPairs = document.getElementById("with-pairs").checked;
  const shown = [];
  EXPLORATIONS[state.exploration].tasks.forEach(([id, , , pairs, , end], i) => {
    if ((!withPairs || pairs) && (!query || String(id).toLowerCase().includes(query) || String(end) === query)) shown.push(i);
  });
  return shown;
}

function renderList() {
  const tasks = EXPLORATIONS[state.exploration].tasks;
  const shown = visibleTasks();
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const previous = el("button", {}, "◀"), next = el("button", {}, "▶");
  previous.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
  previous.onclick = () => { state.page--; renderList(); };
  next.onclick = () => { state.page++; renderList(); };
  document.getElementById("pager").replaceChildren(
    previous, ` page ${state.page + 1} of ${pages} (${shown.length} tasks) `, next);
  document.getElementById("task-list").replaceChildren(
    ...shown.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE).map(i => {
      const [id, steps, candidates, pairs, reward, end] = tasks[i];
      const button = el("button", { class: i === state.task ? "selected" : "" },
        `${id} · ${steps} steps · ${candidates} cand. · ${pairs} pairs · reward ${fmt(reward, 2)} · ${end}`);
      button.onclick = () => select(i);
      return el("li", {}, button);
    }));
}

function pairText(pair, step, side) {
  return pair[side] ?? (step.candidate_turns || [])[pair[`${side}_k`]] ?? "";
}

function candidateRows(walk, index, step, pairs) {
  const best = step.chosen;  // the rule's choice and verdict come with the record (rro.explore.records)
  const pairedTexts = new Set(pairs.map(p => pairText(p, step, "rejected")));
  return step.q_values.map((q, k) => {
    const baseline = step.rose === null || step.rose === undefined;  // ipr, outcome: the policy vs the expert
    // Walks explored before candidates were recorded still have the chosen path's turn.
    const turn = step.candidate_turns ? step.candidate_turns[k]
      : (k === best && !baseline ? walk.turns[index] ?? null : null);
    const action = step.candidate_actions ? step.candidate_actions[k] : (turn === null ? null : "(see text)");
    const paired = turn !== null && pairedTexts.has(turn);
    const verdict = baseline ? `the policy's; the expert's scored ${fmt(step.chosen_q)}` + (paired ? ": paired" : "")
      : k === best ? (step.rose ? "rose: chosen" : "best: chosen (none rose)")
      : (paired ? "rejected: paired" : "rejected");
    const chosen = !baseline && k === best;
    const classes = ["candidate", chosen ? "chosen" : "", chosen && step.rose ? "rose" : "",
                     (baseline || !chosen) && paired ? "paired" : ""].join(" ");
    return el("tr", { class: classes }, el("td", {}, k + 1),
      el("td", {}, action === null ? el("span", { class: "muted" }, turn === null ? "not recorded" : "(no valid action)")
                                   : action),
      el("td", {}, fmt(q)), el("td", {}, verdict),
      el("td", {}, turn === null ? "" : collapsible("text", turn)));
  });
}

function renderStep(walk, step, index) {
  const exploration = EXPLORATIONS[state.exploration];
  const pairs = walk.pairs.filter(p => p.step === step.step);
  const baseline = step.rose === null || step.rose === undefined;
  const rose = baseline ? el("span", { class: "tag" }, "against the expert")
    : el("span", { class: "tag " + (step.rose ? "yes" : "no") }, step.rose ? "a candidate rose"
      : exploration.on_no_rise === "stop" ? "none rose: the walk stops here" : "none rose: the walk goes on with the best");
  const tokens = (step.candidate_generated_tokens || 0) + (step.rollout_generated_tokens || 0);
  const table = el("table", { class: "candidates" },
    el("thead", {}, el("tr", {}, ...["#", "action (in the order drawn)", "Q", "verdict", "turn"].map(h => el("th", {}, h)))),
    el("tbody", {}, ...candidateRows(walk, index, step, pairs)));
  const pairList = pairs.length ? el("ul", {}, ...pairs.map(p => el("li", {},
      `chosen Q ${fmt(p.q_chosen)} over rejected Q ${fmt(p.q_rejected)} `,
      collapsible("chosen", pairText(p, step, "chosen")), collapsible("rejected", pairText(p, step, "rejected")))))
    : el("p", { class: "muted" }, "no pair at this step");
  const observation = walk.observations[index];
  const expertTurn = baseline ? walk.turns[index] : undefined;
  return el("div", { class: "step" },
    el("h3", {}, `Step ${step.step} `, rose),
    el("div", {}, (baseline ? `expert's action Q ${fmt(step.chosen_q)}`
       : `bar: ${fmt(step.bar)} (previous value ${fmt(step.prev_value)}` +
         (exploration.margin ? ` + margin ${exploration.margin}` : "") +
         // the ceiling rule holds the bar just below the maximum reward, which rises whatever the previous value
         (step.bar < step.prev_value + (exploration.margin || 0) ? ", held below the maximum reward" : "") + ")") +
       ` · ${step.candidates} candidates · ` +
       `${step.rollouts ?? 0} rollouts (${step.cache_hits ?? 0} cache hits, ${step.rollouts_saved ?? 0} saved, ` +
       `${step.exact ?? 0} exact) · ${tokens} generated tokens`),
    table,
    expertTurn === undefined ? null : collapsible("the expert's action, taken", expertTurn),
    el("div", {}, el("strong", {}, `Pairs made (${pairs.length})`), pairList),
    observation === undefined ? null : collapsible("observation after the chosen action", observation));
}

function renderWalk() {
  const target = document.getElementById("walk");
  const exploration = EXPLORATIONS[state.exploration];
  if (state.task === null) { target.replaceChildren(el("p", { class: "muted" }, "Pick a task on the left.")); return; }
  const walk = loadWalk(state.exploration, state.task);
  const steps = walk.steps.map((step, index) => renderStep(walk, step, index));
  target.replaceChildren(...[
    el("h3", {}, `Task ${walk.task_id} — ${exploration.label}`),
    walk.instruction ? collapsible("task instruction", walk.instruction) : null,
    el("p", {}, `Ended: ${walk.end || "?"} — ${ENDS[walk.end] || ""}. Final reward ${fmt(walk.reward, 2)}. ` +
      `Start value V(s0) ${fmt(walk.values[0])} (${walk.initial_rollouts} rollouts). ` +
      `Value chain: ${walk.values.map(v => fmt(v, 2)).join(" → ")}.`),
    ...steps,
    steps.length ? null : el("p", { class: "muted" }, "no step was explored")].filter(node => node !== null));
}

function select(i) {
  state.task = i;
  const id = i === null ? "" : EXPLORATIONS[state.exploration].tasks[i][0];
  history.replaceState(null, "", `#e=${state.exploration}&t=${encodeURIComponent(id)}`);
  renderList();
  renderWalk();
}

function chooseExploration(index, taskId) {
  state.exploration = index; state.page = 0;
  const tasks = EXPLORATIONS[index].tasks;
  const wanted = tasks.findIndex(row => String(row[0]) === taskId);
  select(wanted >= 0 ? wanted : (tasks.length ? 0 : null));
}

function start() {
  if (!EXPLORATIONS.length) { document.getElementById("sidebar").hidden = true; return; }
  const chooser = document.getElementById("exploration");
  chooser.replaceChildren(...EXPLORATIONS.map((e, i) =>
    el("option", { value: i }, `${e.label} (${e.strategy}, ${e.tasks.length} tasks)`)));
  chooser.onchange = () => chooseExploration(Number(chooser.value));
  document.getElementById("filter").oninput = () => { state.page = 0; renderList(); };
  document.getElementById("with-pairs").onchange = () => { state.page = 0; renderList(); };
  const hash = new URLSearchParams(location.hash.slice(1));
  const asked = Number(hash.get("e"));  // an address the page never wrote (e=-1, e=x, e=99) opens the first
  const index = Number.isInteger(asked) && asked >= 0 && asked < EXPLORATIONS.length ? asked : 0;
  chooser.value = index;
  chooseExploration(index, hash.get("t"));
}
start();
"""
