"""Replay an expert-anchored exploration under other settings, without sampling anything again.

With `anchor = "expert"` the explored states are the expert's prefixes whatever the candidates do,
and every step records each candidate's rollout rewards in the order they were drawn
(`steps.jsonl`: `q_rewards`, `prev_rewards`, `expert_action`). A `fixed` run with K candidates, N
rollouts and `prev0 = "value"` therefore holds everything that a `rising` or `fixed` run with
K' <= K, N' <= N, any margin, ceiling rule, `prev0` and `on_no_rise` would sample: candidate k of a
state is the same draw, and Q with N' rollouts is the mean of the first N' of the same rollouts
(candidates and rollouts are seeded by where they start and their index, rro.seeds). So the
replay gives the same decisions, pairs and rollout counts that running those settings would give
with a per-request-seeded backend (tested against real runs), and, with any backend, runs drawn
from the same distribution: every setting is compared on the same candidates, which makes
ablations paired rather than independent.

Costs are counted as a run counts them with `adaptive = false`: a candidate costs N' rollouts (1
for an exact, terminal action; 0 when an earlier candidate of the step took the same action), the
expert anchor's bar N' unless a candidate of the previous step took the expert's action, and
V(s0) N' with `prev0 = "value"`.

`rro explore` with `replay_from = RECORDING` (and `rro run`'s variants, `replay_from = "METHOD"`)
writes a whole exploration folder this way (`replay_exploration`): walks, steps, pairs and
statistics with the fields a run writes, its tokens too (counted per candidate and bar), and no wall
time (`stats.json`: `wall_seconds` null, `replayed_from`). It keeps the recording's N and
`on_no_rise = "continue"`, so that every cost is one the recording measured. One approximation: the
bar Q(previous prefix, expert action) is a cache hit in the recording when one of the previous step's
candidates took the expert's action, so its rollouts continued that candidate's turn (its own
thought); a replay that did not draw that candidate counts those rollouts as its bar, where a run
would roll out from the expert's turn.

`ipr` walks the same prefixes, so a recording replays it as well (`_replay_ipr`): its one policy
action is candidate 0, and Q(prefix, expert action) the next step's bar (the same approximation
applies where that bar reused a candidate's rollouts).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rro.agent.prompts import agent_message
from rro.config import ExploreConfig, run_identity
from rro.envs.base import spec
from rro.explore.records import read_steps, read_walks
from rro.explore.rule import RiseRule, Tried, decide_step, prefers_expert
from rro.explore.walk import estimate_cost


class ReplayError(ValueError):
    pass


@dataclass(frozen=True)
class ReplaySettings:
    strategy: str = "rising"  # rising or fixed
    max_candidates: int = 5
    rollouts: int = 3
    margin: float = 0.0
    rise_at_max: bool = ExploreConfig.model_fields["rise_at_max"].default
    prev0: str = "value"
    on_no_rise: str = "continue"
    pair_gap: float = 0.01


def _mean_of_first(rewards: list[float], n: int) -> float:
    """Q from the first n rollouts; an exact (terminal) action has a single reward."""
    return rewards[0] if len(rewards) == 1 else statistics.fmean(rewards[:n])


def read_recording(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An exploration folder's settings (config.json) and step records (steps.jsonl)."""
    folder = Path(folder)
    if not (folder / "steps.jsonl").exists():
        raise ReplayError(f"{folder} holds no finished exploration (no steps.jsonl)")
    return json.loads((folder / "config.json").read_text()), read_steps(folder)


def check_recording(header: dict[str, Any], steps: list[dict[str, Any]], settings: ReplaySettings) -> None:
    """Refuse a recording that cannot answer for `settings`, naming why."""
    if header.get("anchor") != "expert" or header.get("strategy") != "fixed":
        raise ReplayError("a replay needs a fixed, expert-anchored exploration "
                          f"(got strategy {header.get('strategy')!r}, anchor {header.get('anchor')!r})")
    if header.get("adaptive"):
        raise ReplayError("a replay needs full rollouts: the recording ran with adaptive = true")
    if settings.prev0 == "value" and header.get("prev0") != "value":
        raise ReplayError("prev0 = 'value' needs a recording with prev0 = 'value' (its V(s0) rollouts)")
    if settings.max_candidates > header["max_candidates"]:
        raise ReplayError(f"max_candidates {settings.max_candidates} > the recording's {header['max_candidates']}")
    if settings.rollouts > header["rollouts"]:
        raise ReplayError(f"rollouts {settings.rollouts} > the recording's {header['rollouts']}")
    if steps and "q_rewards" not in steps[0]:
        raise ReplayError("the recording's steps.jsonl has no rollout rewards (q_rewards): explore it again")


def _steps_by_task(steps: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A recording's step records grouped by task (in the recording's task order), each in step order."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for step in steps:
        by_task[step["task_id"]].append(step)
    return {task_id: sorted(task_steps, key=lambda s: s["step"]) for task_id, task_steps in by_task.items()}


def replay(steps: list[dict[str, Any]], settings: ReplaySettings, reward_range: tuple[float, float]) -> list[dict[str, Any]]:
    """Replay every task of a recording (its steps.jsonl records); one record per task with its
    replayed steps (candidates, q_values, rose, prev_value, rollouts, bar_rollouts) and pairs."""
    rule = RiseRule.of(settings.margin, settings.rise_at_max, reward_range)
    k, n = settings.max_candidates, settings.rollouts
    records = []
    for task_id, task_steps in _steps_by_task(steps).items():
        initial_rollouts = n if settings.prev0 == "value" else 0
        replayed, pairs, previous_actions, previous_expert_action = [], [], set(), None
        for recorded in task_steps:
            if recorded["step"] == 0:
                prev = _mean_of_first(recorded["prev_rewards"], n) if settings.prev0 == "value" else 0.0
                bar_rollouts = 0
            else:  # Q(previous prefix, expert action): free when a candidate there took that action
                prev = _mean_of_first(recorded["prev_rewards"], n)
                bar_rollouts = 0 if previous_expert_action in previous_actions else n
            drawn, decision = [], None
            for action, rewards in zip(recorded["candidate_actions"], recorded["q_rewards"]):
                drawn.append((action, rewards, _mean_of_first(rewards, n)))
                decision = decide_step([Tried(a, q) for a, _, q in drawn], prev, rule, max_candidates=k,
                                       stop_at_rise=settings.strategy == "rising", pair_gap=settings.pair_gap)
                if decision.done:
                    break
            rollouts, seen = bar_rollouts, set()
            for action, rewards, _ in drawn:
                if action not in seen:
                    rollouts += 1 if len(rewards) == 1 else n
                    seen.add(action)
            rose, best_q = decision.rose, drawn[decision.chosen][2]
            for i in decision.rejected:
                pairs.append({"task_id": task_id, "step": recorded["step"], "chosen": decision.chosen, "rejected": i,
                              "q_chosen": best_q, "q_rejected": drawn[i][2], "prev_value": prev})
            replayed.append({"task_id": task_id, "step": recorded["step"], "candidates": len(drawn),
                             "q_values": [c[2] for c in drawn], "prev_value": prev, "rose": rose,
                             "bar": decision.bar, "chosen": decision.chosen,
                             "rollouts": rollouts, "bar_rollouts": bar_rollouts})
            previous_actions = {c[0] for c in drawn}
            previous_expert_action = recorded.get("expert_action")
            if not rose and settings.on_no_rise == "stop":
                break
        records.append({"task_id": task_id, "initial_rollouts": initial_rollouts, "steps": replayed, "pairs": pairs})
    return records


def summarize(records: list[dict[str, Any]], max_candidates: int) -> dict[str, Any]:
    """The ablation table's figures for replayed records (as rro.explore.run.summarize_steps)."""
    steps = [step for record in records for step in record["steps"]]
    candidates = [step["candidates"] for step in steps]
    rollouts = sum(step["rollouts"] for step in steps) + sum(record["initial_rollouts"] for record in records)
    pairs = sum(len(record["pairs"]) for record in records)
    histogram = Counter(candidates)
    return {
        "tasks": len(records),
        "steps": len(steps),
        "candidates_per_step": statistics.fmean(candidates) if candidates else 0.0,
        "share_of_steps_at_k": histogram.get(max_candidates, 0) / len(steps) if steps else None,
        "histogram": {str(c): v for c, v in sorted(histogram.items())},
        "pairs": pairs,
        "rollouts": rollouts,
        "bar_rollouts": sum(step["bar_rollouts"] for step in steps),
        "rollouts_per_pair": rollouts / pairs if pairs else None,
        "rising_rate": statistics.fmean(step["rose"] for step in steps) if steps else None,
    }


def competence_point(folder: Path, settings: ReplaySettings, reward_range: tuple[float, float]) -> dict[str, Any]:
    """A point of the cost-against-competence plot (rro.report.plot_competence) replayed from a
    recording: the model's mean V(s0) from the first N' of the recorded rollouts, and what
    exploring with `settings` costs, counted as an explored point counts it (bars and V(s0) included)."""
    config, steps = read_recording(folder)
    check_recording(config, steps, settings)
    records = replay(steps, settings, reward_range)
    figures = summarize(records, settings.max_candidates)
    v0 = [_mean_of_first(s["prev_rewards"], settings.rollouts) for s in steps if s["step"] == 0]
    return {"exploration": str(folder), "model": config["model"], "strategy": settings.strategy, "anchor": "expert",
            "rise_at_max": settings.rise_at_max, "tasks": len(records), "mean_v0": statistics.fmean(v0),
            "candidates_per_step": figures["candidates_per_step"], "rollouts_per_pair": figures["rollouts_per_pair"],
            "pairs": figures["pairs"], "rollouts": figures["rollouts"], "replayed": True}


def replayed_pairs(folder: Path, records: list[dict[str, Any]], settings: ReplaySettings) -> list[dict[str, Any]]:
    """The replayed pairs as `rro explore` writes them (TRL's conversational format, for `rro dpo`):
    the prompt is the recorded walk's messages up to the state, chosen and rejected the candidates'
    recorded turns."""
    folder = Path(folder)
    env = json.loads((folder / "config.json").read_text())["env"]
    messages = {walk["task_id"]: walk.get("messages") for walk in read_walks(folder)}
    steps = {(s["task_id"], s["step"]): s for s in read_steps(folder)}
    pairs = []
    for record in records:
        for pair in record["pairs"]:
            step = steps[(pair["task_id"], pair["step"])]
            if messages[pair["task_id"]] is None or "prompt_messages" not in step:
                raise ReplayError(f"{folder} records no prompts (walk messages): explore it again to export pairs")
            turns = step["candidate_turns"]
            pairs.append({
                "prompt": messages[pair["task_id"]][:step["prompt_messages"]],
                "chosen": [agent_message(turns[pair["chosen"]])],
                "rejected": [agent_message(turns[pair["rejected"]])],
                "task_id": pair["task_id"], "env": env, "step": pair["step"],
                "q_chosen": pair["q_chosen"], "q_rejected": pair["q_rejected"], "prev_value": pair["prev_value"],
                "strategy": settings.strategy, "anchor": "expert",
            })
    return pairs


_COST_FIELDS = tuple(estimate_cost([]))  # what a run counts per estimate


def settings_of(config) -> ReplaySettings:
    """The replayable settings of an ExploreConfig."""
    return ReplaySettings(config.strategy, config.max_candidates, config.rollouts, config.margin, config.rise_at_max,
                          config.prev0, config.on_no_rise, config.pair_gap)


def _check_replay_of(config, header: dict[str, Any], steps: list[dict[str, Any]], walks: list[dict[str, Any]]) -> None:
    """Refuse to replay `config` from a recording that would not give what running it gives (an
    `outcome` or policy-anchored config with `replay_from` is refused by ExploreConfig itself)."""
    if config.adaptive and config.strategy != "ipr":  # ipr has no bars, so adaptive changes nothing there
        raise ReplayError("a replayed exploration runs full rollouts: set adaptive = false")
    if config.on_no_rise != "continue" and config.strategy != "ipr":
        raise ReplayError("a replayed exploration continues where nothing rises (on_no_rise = 'continue'): "
                          "a stopped walk's record ends where the recording's goes on")
    # What the recording and the replay must share (the settings the explored states, candidates and
    # rollouts depend on): all that identify the run but the rule's; the tasks are compared by id below.
    wanted = config.model_dump(mode="json")
    differing = [f"{key}: {header.get(key)!r} (recording) vs {wanted[key]!r}"
                 for key in run_identity(config, replayed=True) if header.get(key) != wanted[key]]
    if differing:
        raise ReplayError(f"the recording {config.replay_from} explored with other settings: {'; '.join(differing)} "
                          "(a replay keeps N: costs are counted per rollout)")
    # ipr draws one candidate per state and has no V(s0) to read
    check_recording(header, steps, ReplaySettings("fixed", 1, config.rollouts, prev0="zero")
                    if config.strategy == "ipr" else settings_of(config))
    if steps and "candidate_costs" not in steps[0]:
        raise ReplayError(f"{config.replay_from} records no per-candidate costs: explore it again with this version")
    recorded, asked = [w["task_id"] for w in walks], [t.id for t in config.tasks()]
    if recorded != asked:
        raise ReplayError(f"{config.replay_from} explored other tasks ({len(recorded)} recorded, {len(asked)} asked; "
                          "the same limit, split and filters give the same tasks)")


def _bar_cost(replayed_step: dict[str, Any], recorded: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, int] | None:
    """What the replayed step's bar cost, as the recording paid it: nothing at step 0; the same when
    the replay's bar is a cache hit (a drawn candidate took the expert's action, so it was one in the
    recording too) or when neither is; where only the recording drew such a candidate, N rollouts:
    that candidate's."""
    if previous is None:
        return None
    if replayed_step["bar_rollouts"] == 0 or recorded["bar_rollouts"] > 0:
        return recorded["bar_cost"]
    taken = previous["candidate_costs"][previous["candidate_actions"].index(previous["expert_action"])]
    return {**{key: taken[key] for key in _COST_FIELDS}, "cache_hits": 0}


def replay_exploration(config) -> list[dict[str, Any]]:
    """The walk records (walks.jsonl) that exploring with `config` gives, replayed from the finished
    recording `config.replay_from` (the module's docstring says what is exact and what is not)."""
    folder = Path(config.replay_from)
    header, steps = read_recording(folder)
    walks = read_walks(folder)
    _check_replay_of(config, header, steps, walks)
    if config.strategy == "ipr":
        return _replay_ipr(config, steps, walks)
    settings = settings_of(config)
    replayed = replay(steps, settings, spec(config.env).reward_range)
    pairs = defaultdict(list)
    for pair in replayed_pairs(folder, replayed, settings):
        pairs[pair["task_id"]].append(pair)
    recorded_steps = {(s["task_id"], s["step"]): s for s in steps}
    records = []
    for walk, record in zip(walks, replayed):
        out_steps, previous = [], None
        for step in record["steps"]:
            recorded, k = recorded_steps[(step["task_id"], step["step"])], step["candidates"]
            costs = recorded["candidate_costs"][:k]
            bar = _bar_cost(step, recorded, previous)
            paid = costs + ([bar] if bar else [])
            prev_rewards = recorded["prev_rewards"] if step["step"] or settings.prev0 == "value" else []
            out_steps.append({
                "task_id": step["task_id"], "step": step["step"], "anchor": "expert", "candidates": k,
                "distinct_actions": len(set(recorded["candidate_actions"][:k])), "rose": step["rose"],
                "bar": step["bar"], "chosen": step["chosen"],
                "prev_value": step["prev_value"], "q_values": step["q_values"], "q_rewards": recorded["q_rewards"][:k],
                "prev_rewards": prev_rewards,
                **({"expert_action": recorded["expert_action"]} if "expert_action" in recorded else {}),
                "candidate_turns": recorded["candidate_turns"][:k], "candidate_actions": recorded["candidate_actions"][:k],
                "prompt_messages": recorded["prompt_messages"], "chosen_q": max(step["q_values"]),
                "candidate_generated_tokens": sum(c["generated_tokens"] for c in costs),
                "candidate_prompt_tokens": sum(c["prompt_tokens"] for c in costs),
                **{key: sum(c[key] for c in paid) for key in _COST_FIELDS},
                "bar_rollouts": bar["rollouts"] if bar else 0,
                "candidate_costs": costs, "bar_cost": bar,
            })
            previous = recorded
        values = list(walk["values"])
        if settings.prev0 == "zero":
            values[0] = 0.0
        records.append({
            "task_id": walk["task_id"], "strategy": settings.strategy, "end": walk["end"], "reward": walk["reward"],
            "values": values, **{key: walk[key] for key in ("instruction", "turns", "observations", "messages")},
            "initial_cost": walk["initial_cost"] if settings.prev0 == "value" else {},
            "steps": out_steps, "pairs": pairs[walk["task_id"]],
        })
    return records


def _replay_ipr(config, steps: list[dict[str, Any]], walks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `strategy = "ipr"` explores (rro.explore.baselines.ipr_tasks), from a fixed, expert-anchored
    recording: IPR's one policy action at an expert prefix is the recording's candidate 0 there (the
    same seed), and Q(prefix, expert action) is the recording's next bar; after the expert's last
    action, a submit, it is the exact reward the walk ended with. Costs are counted as IPR pays
    them: the expert's estimate first, so a candidate that took the expert's action is a cache hit."""
    terminal = spec(config.env).terminal_actions
    by_task = _steps_by_task(steps)
    records = []
    for walk in walks:
        task_steps = by_task.get(walk["task_id"], [])
        last_action = task_steps[-1].get("expert_action") if task_steps else None
        if task_steps and (walk["end"] != "submitted" or (last_action or "").strip().lower() not in terminal):
            raise ReplayError(f"task {walk['task_id']}: the expert's walk ended {walk['end']!r}, not by submitting, "
                              "so the value of its last action was never estimated; explore ipr instead")
        out_steps, pairs, values = [], [], []
        for recorded, following in zip(task_steps, [*task_steps[1:], None]):
            expert_action = recorded["expert_action"]
            if following is not None:  # Q(this prefix, expert action) is the next step's bar
                q_expert = _mean_of_first(following["prev_rewards"], config.rollouts)
                if following["bar_rollouts"] > 0:
                    expert_cost = following["bar_cost"]
                else:  # the bar reused a candidate that took the expert's action: IPR pays those rollouts
                    taken = recorded["candidate_costs"][recorded["candidate_actions"].index(expert_action)]
                    expert_cost = {**{key: taken[key] for key in _COST_FIELDS}, "cache_hits": 0}
            else:  # the expert's submit, scored exactly by replaying the walk: one episode, no generation
                q_expert = walk["reward"]
                expert_cost = {**dict.fromkeys(_COST_FIELDS, 0), "rollouts": 1, "env_steps": recorded["step"] + 1,
                               "exact": 1}
            turn, action, cost = (recorded["candidate_turns"][0], recorded["candidate_actions"][0],
                                  recorded["candidate_costs"][0])
            q_agent = _mean_of_first(recorded["q_rewards"][0], config.rollouts)
            if action == expert_action:  # the expert's estimate, reused
                q_agent = q_expert
                agent_cost = {**dict.fromkeys(_COST_FIELDS, 0), "cache_hits": 1, "exact": expert_cost["exact"]}
            else:
                agent_cost = {key: cost[key] for key in _COST_FIELDS}
            expert_turn = walk["turns"][recorded["step"]]
            if action != expert_action and prefers_expert(q_expert, q_agent, config.tau):
                pairs.append({
                    "prompt": walk["messages"][:recorded["prompt_messages"]],
                    "chosen": [agent_message(expert_turn)], "rejected": [agent_message(turn)],
                    "task_id": walk["task_id"], "env": config.env, "step": recorded["step"],
                    "q_chosen": q_expert, "q_rejected": q_agent, "prev_value": None, "strategy": "ipr",
                })
            out_steps.append({
                "task_id": walk["task_id"], "step": recorded["step"], "candidates": 1, "distinct_actions": 1,
                "rose": None, "bar": None, "chosen": None, "q_values": [q_agent], "chosen_q": q_expert, "candidate_turns": [turn],
                "candidate_actions": [action], "candidate_generated_tokens": cost["generated_tokens"],
                "candidate_prompt_tokens": cost["prompt_tokens"],
                **{key: expert_cost[key] + agent_cost[key] for key in _COST_FIELDS},
            })
            values.append(q_expert)
        records.append({"task_id": walk["task_id"], "strategy": "ipr", "steps": out_steps, "pairs": pairs,
                        "values": values, "end": walk["end"], "reward": walk["reward"], "turns": walk["turns"]})
    return records
