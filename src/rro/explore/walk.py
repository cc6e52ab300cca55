"""Reward-rising exploration (RRO) and its fixed-size twin, on many tasks at once.

For one task (docs/design.md, "The rule"), with `anchor = "policy"`:

    prev = V(s0)                                # or 0 with prev0 = "zero"
    for each step:
        tried = []
        for k in 1..K:
            a = sample the policy at T_explore; q = Q(s, a); tried += (a, q)
            if rising and rises(q, prev): stop sampling         # `fixed` never stops early
        best = the tried candidate with the highest q (the rising one when one rose)
        pairs += (s, best, a') for each tried a' with a different action and q(a') <= q(best) - pair_gap
        if nothing rose and on_no_rise == "stop": end the task
        s = s + best; prev = q(best); end the task if best ended the episode

    rises(q, prev) = q > prev + margin, or (rise_at_max) q equals the top of the reward range

The rule itself (when to stop drawing, which candidate is chosen, which are paired) is
rro.explore.rule's `decide_step`; this module draws, estimates and keeps the records.

With `anchor = "expert"` the explored states are the expert trajectory's prefixes s_0, s_1, ...
instead: the steps draw candidates and pair them exactly as above, but the walk then takes the
expert's action whatever the candidates did, and the next bar is prev = Q(s_t, expert action) (the
policy's own value of reaching s_{t+1}: N rollouts, or free when a candidate took the same action).
The first bar follows `prev0` as above. The walk ends where the expert's trajectory ends.

Tasks advance in rounds: each round, every active task draws one candidate in its own state, all
the candidates are sampled in one policy call, and all their Q estimates go to the engine together.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field

from rro.agent.parse import parse_turn
from rro.agent.prompts import agent_message
from rro.agent.trajectory import Episode
from rro.config import ExploreConfig
from rro.envs.base import Env, Task, spec
from rro.explore.records import Cost, PairRecord, StepRecord
from rro.explore.rule import RiseRule, StepDecision, Tried, decide_step
from rro.policy.base import Policy
from rro.rollout import apply_turn, start_episode
from rro.seeds import state_seed
from rro.values import Estimate, MonteCarloValues, State


@dataclass
class Candidate:
    turn: str
    action: str | None
    q: float  # the mean of the rollouts run so far (all N unless the adaptive budget stopped it)
    estimate: Estimate
    generated_tokens: int
    prompt_tokens: int


@dataclass
class TaskWalk:
    """One task's walk: its live environment and episode (the chosen path; the expert's with the
    expert anchor), and what it produced."""

    task: Task
    env: Env
    episode: Episode
    prev: float = 0.0
    prev_rewards: list[float] = field(default_factory=list)  # the rollout rewards behind `prev`
    tried: list[Candidate] = field(default_factory=list)
    step_started: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)  # one record per step
    pairs: list[PairRecord] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # the bars: prev0, then q(best) (expert: Q(s, expert action)) per step
    initial_cost: dict[str, int] = field(default_factory=dict)  # what V(s0) cost
    end: str = ""  # why the walk ended: submitted, max_steps, invalid, no_rise (expert anchor: also expert_ended)
    # Expert anchor only: the expert's turns still to come, its next turn, and the estimate that set
    # `prev` (its cost is counted in the step that uses it as a bar).
    expert: Generator[str, str, None] | None = None
    expert_turn: str | None = None
    bar_estimate: Estimate | None = None

    @property
    def state(self) -> State:
        return State(self.task, tuple(step.turn for step in self.episode.steps))


def estimate_cost(estimates: list[Estimate]) -> Cost:
    return {
        "rollouts": sum(e.rollouts for e in estimates),
        "env_steps": sum(e.env_steps for e in estimates),
        "rollout_generated_tokens": sum(e.generated_tokens for e in estimates),
        "rollout_prompt_tokens": sum(e.prompt_tokens for e in estimates),
        "cache_hits": sum(e.cached for e in estimates),
        "exact": sum(e.exact for e in estimates),
        "rollouts_saved": sum(e.budget - e.rollouts for e in estimates),
    }


def _decide(walk: TaskWalk, settings: ExploreConfig, rule: RiseRule) -> StepDecision:
    """The rule's decision over the walk's candidates tried so far in its state."""
    return decide_step([Tried(c.action, c.q) for c in walk.tried], walk.prev, rule,
                       max_candidates=settings.max_candidates, stop_at_rise=settings.strategy == "rising",
                       pair_gap=settings.pair_gap)


def _finish_step(walk: TaskWalk, settings: ExploreConfig, rule: RiseRule) -> None:
    """Record the step the rule decided and move the walk on: from the chosen candidate (policy
    anchor) or the expert's action (expert anchor)."""
    decision = _decide(walk, settings, rule)
    best = walk.tried[decision.chosen]
    _record_step(walk, settings, decision)
    walk.tried, walk.bar_estimate = [], None
    if not decision.rose and settings.on_no_rise == "stop":
        walk.end = "no_rise"
        return
    if settings.anchor == "policy":
        apply_turn(walk.env, walk.episode, best.turn, settings.max_steps, best.generated_tokens, best.prompt_tokens,
                   settings.max_invalid_turns)
        walk.prev, walk.prev_rewards = best.q, list(best.estimate.rewards)
        walk.values.append(best.q)
        if walk.episode.done:
            walk.end = walk.episode.termination
    else:  # the expert's action, whatever the candidates did; the caller estimates the next bar
        observation = apply_turn(walk.env, walk.episode, walk.expert_turn, settings.max_steps,
                                 max_invalid_turns=settings.max_invalid_turns)
        walk.expert_turn = None if walk.episode.done else _next_expert_turn(walk.expert, observation)
        if walk.expert_turn is None:
            walk.end = walk.episode.termination if walk.episode.done else "expert_ended"
    walk.step_started = time.perf_counter()


def _record_step(walk: TaskWalk, settings: ExploreConfig, decision: StepDecision) -> None:
    """The step's record and its pairs, appended to the walk's."""
    best = walk.tried[decision.chosen]
    prompt = [dict(m) for m in walk.episode.messages]
    step_index = len(walk.episode.steps)
    for rejected in decision.rejected:
        walk.pairs.append(PairRecord(
            prompt=prompt,
            chosen=[agent_message(best.turn)],
            rejected=[agent_message(walk.tried[rejected].turn)],
            task_id=walk.task.id,
            env=walk.task.env,
            step=step_index,
            q_chosen=best.q,
            q_rejected=walk.tried[rejected].q,
            prev_value=walk.prev,
            strategy=settings.strategy,
            anchor=settings.anchor,
        ))
    bar_cost = [walk.bar_estimate] if walk.bar_estimate else []
    walk.steps.append(StepRecord(
        task_id=walk.task.id,
        step=step_index,
        anchor=settings.anchor,
        candidates=len(walk.tried),
        distinct_actions=len({c.action for c in walk.tried}),
        rose=decision.rose,
        bar=decision.bar,
        chosen=decision.chosen,
        prev_value=walk.prev,
        q_values=[c.q for c in walk.tried],
        # Every rollout's reward, so that the step can be replayed under other settings
        # (rro.explore.replay); an exact (terminal) action has one.
        q_rewards=[list(c.estimate.rewards) for c in walk.tried],
        prev_rewards=list(walk.prev_rewards),
        **({"expert_action": parse_turn(walk.expert_turn, walk.task.env).action} if walk.expert_turn else {}),
        # The candidates as drawn, so that a report can show what was rejected and why.
        candidate_turns=[c.turn for c in walk.tried],
        candidate_actions=[c.action for c in walk.tried],
        prompt_messages=len(prompt),  # the state's prompt: the walk's first messages (its record's `messages`)
        chosen_q=best.q,
        candidate_generated_tokens=sum(c.generated_tokens for c in walk.tried),
        candidate_prompt_tokens=sum(c.prompt_tokens for c in walk.tried),
        # Costs include the bar's estimate when the expert anchor paid for it (bar_rollouts of them).
        **estimate_cost([c.estimate for c in walk.tried] + bar_cost),
        bar_rollouts=sum(e.rollouts for e in bar_cost),
        # The same costs per candidate and for the bar, so that a replay can count a shorter step's.
        candidate_costs=[{"generated_tokens": c.generated_tokens, "prompt_tokens": c.prompt_tokens,
                          **estimate_cost([c.estimate])} for c in walk.tried],
        bar_cost=estimate_cost(bar_cost) if bar_cost else None,
        wall_s=time.perf_counter() - walk.step_started,
    ))


def _next_expert_turn(expert: Generator[str, str, None], observation: str | None) -> str | None:
    try:
        return next(expert) if observation is None else expert.send(observation)
    except StopIteration:
        return None


def _expert_bars(walks: list[TaskWalk], values: MonteCarloValues) -> None:
    """Set each walk's bar to Q(previous prefix, expert action): the policy's value of the state the
    expert's last action reached, from full-budget rollouts (a bar must be exact), all in one call."""
    items = [(State(w.task, w.state.turns[:-1]), w.episode.steps[-1].turn) for w in walks]
    for walk, estimate in zip(walks, values.q_values(items)):
        walk.prev, walk.prev_rewards = estimate.value, list(estimate.rewards)
        walk.values.append(estimate.value)
        walk.bar_estimate = estimate


def _complete_where_needed(walks: list[TaskWalk], values: MonteCarloValues, settings: ExploreConfig,
                           rule: RiseRule) -> None:
    """Top up stopped estimates where their exact value decides something, so that the adaptive
    budget changes no decision: every value when nothing rose (the best is picked among them), and,
    after a rise, those whose pairing with the rising candidate is not yet certain. With the expert
    anchor also a candidate that took the expert's action: its estimate becomes the next bar."""
    needed = []
    for walk in walks:
        decision = _decide(walk, settings, rule)
        best = walk.tried[decision.chosen]
        if not decision.rose:
            needed += [c.estimate.key for c in walk.tried]
        else:  # the rising candidate ran all N rollouts: its value is exact
            needed += [c.estimate.key for c in walk.tried
                       if values.is_partial(c.estimate.key) and values.upper_bound(c.estimate.key) > best.q - settings.pair_gap]
        if walk.expert_turn is not None:
            expert_action = parse_turn(walk.expert_turn, walk.task.env).action
            needed += [c.estimate.key for c in walk.tried if c.action == expert_action and values.is_partial(c.estimate.key)]
    if needed:
        values.complete(needed)
    for walk in walks:
        for candidate in walk.tried:
            if candidate.estimate.key:
                candidate.q = values.value(candidate.estimate.key)


def walk_tasks(
    tasks: list[Task],
    policy: Policy,
    values: MonteCarloValues,
    make_env,
    settings: ExploreConfig,
    icl_shots: int = 0,
) -> list[TaskWalk]:
    """Explore every task to its end; returns the walks in task order."""
    rule = RiseRule.of(settings.margin, settings.rise_at_max, spec(settings.env).reward_range)
    walks = []
    for task in tasks:
        env = make_env()
        walk = TaskWalk(task, env, start_episode(env, task, policy.name, icl_shots))
        if settings.anchor == "expert":
            walk.expert = spec(task.env).expert(task)
            walk.expert_turn = _next_expert_turn(walk.expert, None)
            if walk.expert_turn is None:
                walk.end = "expert_ended"
        walks.append(walk)
    if settings.prev0 == "value":
        for walk, estimate in zip(walks, values.v_values([w.state for w in walks])):
            walk.prev, walk.prev_rewards = estimate.value, list(estimate.rewards)
            walk.initial_cost = estimate_cost([estimate])
    for walk in walks:
        walk.values.append(walk.prev)
        walk.step_started = time.perf_counter()

    while active := [w for w in walks if not w.end]:
        samples = policy.generate(
            [w.episode.messages for w in active],
            n=1,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_new_tokens=settings.max_new_tokens,
            # Candidate k in a state is seeded by (task, state, k): not by round or chunk.
            seed=[state_seed(settings.seed, "candidate", w.task.env, w.task.id, w.state.turns, len(w.tried))
                  for w in active],
        )
        # Rising candidates are decided against a bar, which lets the adaptive budget stop early.
        bars = [rule.bar(w.prev) for w in active] if settings.strategy == "rising" else None
        estimates = values.q_values([(w.state, sample.text) for w, (sample,) in zip(active, samples)], bars)
        finishing = []
        for walk, (sample,), estimate in zip(active, samples, estimates):
            walk.tried.append(Candidate(sample.text, parse_turn(sample.text, walk.state.task.env).action, estimate.value, estimate,
                                        sample.generated_tokens, sample.prompt_tokens))
            if _decide(walk, settings, rule).done:
                finishing.append(walk)
        _complete_where_needed(finishing, values, settings, rule)
        for walk in finishing:
            _finish_step(walk, settings, rule)
        if settings.anchor == "expert":
            _expert_bars([w for w in finishing if not w.end], values)
    for walk in walks:
        walk.env.close()
    return walks
