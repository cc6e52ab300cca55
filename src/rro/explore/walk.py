"""Reward-rising exploration (RRO) and its fixed-size twin, on many tasks at once.

For one task (DESIGN §2):

    prev = V(s0)                                # or 0 with prev0 = "zero"
    for each step:
        tried = []
        for k in 1..K:
            a = sample the policy at T_explore; q = Q(s, a); tried += (a, q)
            if rising and q > prev + margin: stop sampling      # `fixed` never stops early
        best = the tried candidate with the highest q (the rising one when one rose)
        pairs += (s, best, a') for each tried a' with a different action and q(a') <= q(best) - pair_gap
        if nothing rose and on_no_rise == "stop": end the task
        s = s + best; prev = q(best); end the task if best ended the episode

Tasks advance in rounds: each round, every active task draws one candidate in its own state, all
the candidates are sampled in one policy call, and all their Q estimates go to the engine together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rro.agent.parse import parse_turn
from rro.agent.prompts import agent_message
from rro.agent.trajectory import Episode
from rro.config import ExploreConfig
from rro.envs.base import Env, Task
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
    """One task's walk: its live environment and episode (the chosen path), and what it produced."""

    task: Task
    env: Env
    episode: Episode
    prev: float = 0.0
    tried: list[Candidate] = field(default_factory=list)
    step_started: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)  # one cost record per step
    pairs: list[dict[str, Any]] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # prev0, then q(best) of each step: the chain
    initial_cost: dict[str, int] = field(default_factory=dict)  # what V(s0) cost
    end: str = ""  # why the walk ended: submitted, max_steps, invalid, no_rise

    @property
    def state(self) -> State:
        return State(self.task, tuple(step.turn for step in self.episode.steps))


def estimate_cost(estimates: list[Estimate]) -> dict[str, int]:
    return {
        "rollouts": sum(e.rollouts for e in estimates),
        "env_steps": sum(e.env_steps for e in estimates),
        "rollout_generated_tokens": sum(e.generated_tokens for e in estimates),
        "rollout_prompt_tokens": sum(e.prompt_tokens for e in estimates),
        "cache_hits": sum(e.cached for e in estimates),
        "exact": sum(e.exact for e in estimates),
        "rollouts_saved": sum(e.budget - e.rollouts for e in estimates),
    }


def _finish_step(walk: TaskWalk, settings: ExploreConfig) -> None:
    best = max(walk.tried, key=lambda c: c.q)  # first of equals: the earliest drawn
    rose = best.q > walk.prev + settings.margin
    prompt = [dict(m) for m in walk.episode.messages]
    step_index = len(walk.episode.steps)
    for other in walk.tried:
        if other.action != best.action and other.q <= best.q - settings.pair_gap:
            walk.pairs.append({
                "prompt": prompt,
                "chosen": [agent_message(best.turn)],
                "rejected": [agent_message(other.turn)],
                "task_id": walk.task.id,
                "env": walk.task.env,
                "step": step_index,
                "q_chosen": best.q,
                "q_rejected": other.q,
                "prev_value": walk.prev,
                "strategy": settings.strategy,
            })
    walk.steps.append({
        "task_id": walk.task.id,
        "step": step_index,
        "candidates": len(walk.tried),
        "distinct_actions": len({c.action for c in walk.tried}),
        "rose": rose,
        "prev_value": walk.prev,
        "q_values": [c.q for c in walk.tried],
        "chosen_q": best.q,
        "candidate_generated_tokens": sum(c.generated_tokens for c in walk.tried),
        "candidate_prompt_tokens": sum(c.prompt_tokens for c in walk.tried),
        **estimate_cost([c.estimate for c in walk.tried]),
        "wall_s": time.perf_counter() - walk.step_started,
    })
    walk.tried = []
    if not rose and settings.on_no_rise == "stop":
        walk.end = "no_rise"
        return
    apply_turn(walk.env, walk.episode, best.turn, settings.max_steps, best.generated_tokens, best.prompt_tokens,
               settings.max_invalid_turns)
    walk.prev = best.q
    walk.values.append(best.q)
    if walk.episode.done:
        walk.end = walk.episode.termination
    walk.step_started = time.perf_counter()


def _complete_where_needed(walks: list[TaskWalk], values: MonteCarloValues, settings: ExploreConfig) -> None:
    """Top up stopped estimates where their exact value decides something, so that the adaptive
    budget changes no decision: every value when nothing rose (the best is picked among them), and,
    after a rise, those whose pairing with the rising candidate is not yet certain."""
    needed = []
    for walk in walks:
        best = max(walk.tried, key=lambda c: c.q)
        if best.q <= walk.prev + settings.margin:
            needed += [c.estimate.key for c in walk.tried]
        else:  # the rising candidate ran all N rollouts: its value is exact
            needed += [c.estimate.key for c in walk.tried
                       if values.is_partial(c.estimate.key) and values.upper_bound(c.estimate.key) > best.q - settings.pair_gap]
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
    walks = []
    for task in tasks:
        env = make_env()
        walks.append(TaskWalk(task, env, start_episode(env, task, policy.name, icl_shots)))
    if settings.prev0 == "value":
        for walk, estimate in zip(walks, values.v_values([w.state for w in walks])):
            walk.prev = estimate.value
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
        bars = [w.prev + settings.margin for w in active] if settings.strategy == "rising" else None
        estimates = values.q_values([(w.state, sample.text) for w, (sample,) in zip(active, samples)], bars)
        finishing = []
        for walk, (sample,), estimate in zip(active, samples, estimates):
            walk.tried.append(Candidate(sample.text, parse_turn(sample.text, walk.state.task.env).action, estimate.value, estimate,
                                        sample.generated_tokens, sample.prompt_tokens))
            rose = estimate.value > walk.prev + settings.margin
            if (rose and settings.strategy == "rising") or len(walk.tried) >= settings.max_candidates:
                finishing.append(walk)
        _complete_where_needed(finishing, values, settings)
        for walk in finishing:
            _finish_step(walk, settings)
    for walk in walks:
        walk.env.close()
    return walks
