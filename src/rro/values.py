"""Monte Carlo process rewards on top of the rollout engine.

Q(s, a) is the mean final reward of N rollouts that take action `a` in state `s` and let the
policy finish the episode; V(s) is the same from `s` itself. A terminal action (`submit`) needs no
rollouts: the environment scores it exactly. A state is (task, agent turns so far); estimates are
cached by (task, the actions taken so far, the candidate's parsed action), so the same action in
the same state is never estimated twice, whatever thought came with it. All estimates requested
together go to the engine in one `run_episodes` call.

Adaptive budget (`adaptive=True`): when the caller says which value a candidate must exceed to
rise (its bar), rollouts run in rounds of one per candidate, and a candidate stops as soon as it
can no longer rise: rewards are bounded, so after k of N rollouts with sum S the final mean is at
most (S + (N - k) * max_reward) / N. Candidates that may rise always get all N rollouts, so the
values that later decisions depend on are exact; `complete` tops a stopped estimate up to N when its
exact value is needed after all.

Rollout j from a start (task, turns) is seeded by (seed, task, turns, j) alone: the same estimate
gets the same rollouts whichever call, chunk, resumed run or worker computes it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rro.agent.parse import parse_turn
from rro.envs.base import Env, Task
from rro.policy.base import Policy
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes
from rro.seeds import state_seed


@dataclass(frozen=True)
class State:
    task: Task
    turns: tuple[str, ...] = ()  # agent turns taken so far, replayed to restore the state

    def actions(self) -> tuple[str | None, ...]:
        return tuple(parse_turn(turn, self.task.env).action for turn in self.turns)


@dataclass
class Estimate:
    value: float
    rewards: list[float] = field(default_factory=list)
    partial: bool = False  # stopped early by the adaptive budget: fewer than N rollouts
    exact: bool = False  # a terminal action, scored by the environment
    ended: bool = False  # an episode ended at its start's last turn (a terminal action took effect)
    cached: bool = False  # reused: nothing was run for it this time
    rollouts: int = 0  # episodes run for this estimate
    env_steps: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    key: tuple = ()  # the cache key; its entry is the one estimate that all reuses refer to
    budget: int = 0  # rollouts a full budget runs for it (N, 1 for a terminal action, 0 when reused)
    start: tuple[Task, tuple[str, ...]] | None = None  # where its rollouts start: (task, turns)

    def upper_bound(self, n: int, max_reward: float) -> float:
        """The highest mean that N rollouts could still reach, given the rewards seen so far."""
        return (sum(self.rewards) + (n - len(self.rewards)) * max_reward) / n


class MonteCarloValues:
    def __init__(
        self,
        policy: Policy,
        make_env: Callable[[], Env],
        terminal_actions: frozenset[str],
        rollouts: int = 5,
        sampling: SamplingConfig = SamplingConfig(temperature=1.0),
        max_steps: int = 10,
        icl_shots: int = 0,
        max_invalid_turns: int = 3,
        adaptive: bool = False,
        reward_range: tuple[float, float] = (-1.0, 1.0),
    ):
        self.policy = policy
        self.make_env = make_env
        self.terminal_actions = terminal_actions
        self.rollouts = rollouts
        self.sampling = sampling
        self.max_steps = max_steps
        self.icl_shots = icl_shots
        self.max_invalid_turns = max_invalid_turns
        self.adaptive = adaptive
        self.max_reward = reward_range[1]
        self.cache: dict[tuple, Estimate] = {}

    def _rollout_seed(self, start: tuple[Task, tuple[str, ...]], index: int) -> int | None:
        """The seed of the `index`-th rollout from `start`: what it samples, not when it runs."""
        if self.sampling.seed is None:
            return None
        task, turns = start
        return state_seed(self.sampling.seed, "rollout", task.env, task.id, turns, index)

    def _add_rollouts(self, estimates: Sequence[Estimate], counts: Sequence[int]) -> None:
        """Run `counts[i]` more episodes from each estimate's start, all in one call."""
        requests = [EpisodeRequest(*estimate.start, tag=i, seed=self._rollout_seed(estimate.start, len(estimate.rewards) + j))
                    for i, (estimate, count) in enumerate(zip(estimates, counts)) for j in range(count)]
        if not requests:
            return
        episodes = run_episodes(requests, self.policy, self.make_env, self.sampling, self.max_steps, self.icl_shots,
                                self.max_invalid_turns)
        for request, episode in zip(requests, episodes):
            estimate = estimates[request.tag]
            estimate.ended |= episode.done and len(episode.steps) == len(estimate.start[1])
            estimate.rewards.append(episode.reward)
            estimate.rollouts += 1
            estimate.env_steps += len(episode.steps)
            estimate.generated_tokens += sum(step.generated_tokens for step in episode.steps)
            estimate.prompt_tokens += sum(step.prompt_tokens for step in episode.steps)
        for estimate in estimates:
            estimate.value = statistics.fmean(estimate.rewards)

    def q_values(self, items: Sequence[tuple[State, str]], bars: Sequence[float] | None = None) -> list[Estimate]:
        """Q(s, a) for each (state, candidate turn), computing each distinct key once.

        `bars[i]` is the value item i must exceed to rise; with the adaptive budget on, a candidate
        stops once it cannot. Reused estimates come back as cost-free copies marked `cached`.
        """
        keys, fresh, bar_of = [], {}, {}
        for i, (state, turn) in enumerate(items):
            action = parse_turn(turn, state.task.env).action
            key = (state.task.env, state.task.id, state.actions(), action)
            keys.append(key)
            if key not in self.cache and key not in fresh:
                exact = action is not None and action.strip().lower() in self.terminal_actions
                # A terminal action needs one replay (the environment's exact reward); others N rollouts.
                fresh[key] = Estimate(value=0.0, exact=exact, key=key, budget=1 if exact else self.rollouts,
                                      start=(state.task, state.turns + (turn,)))
                bar_of[key] = None if bars is None else bars[i]
        adaptive, full = [], []  # adaptive: decided against a bar, one rollout per round
        for key, estimate in fresh.items():
            stoppable = self.adaptive and not estimate.exact and bar_of[key] is not None
            (adaptive if stoppable else full).append(estimate)
        self._add_rollouts(full, [e.budget for e in full])
        # A terminal action the environment did not take (WebShop's Buy Now off a product page
        # does nothing) is an ordinary action after all: it gets the full N rollouts.
        declined = [e for e in full if e.exact and not e.ended]
        for estimate in declined:
            estimate.exact, estimate.budget = False, self.rollouts
        self._add_rollouts(declined, [self.rollouts - 1] * len(declined))
        running = adaptive
        while running:
            self._add_rollouts(running, [1] * len(running))
            running = [e for e in running if len(e.rewards) < e.budget
                       and e.upper_bound(self.rollouts, self.max_reward) > bar_of[e.key]]
        for key, estimate in fresh.items():
            estimate.partial = len(estimate.rewards) < estimate.budget
            self.cache[key] = estimate
        results, returned = [], set()
        for key in keys:
            estimate = self.cache[key]
            if key in fresh and key not in returned:
                returned.add(key)
                results.append(estimate)
            else:  # estimated earlier (or earlier in this batch): no cost this time
                results.append(Estimate(estimate.value, estimate.rewards, estimate.partial, estimate.exact,
                                        cached=True, key=key))
        return results

    def value(self, key: tuple) -> float:
        """The current value of a cached estimate (it changes when `complete` tops it up)."""
        return self.cache[key].value

    def is_partial(self, key: tuple) -> bool:
        return self.cache[key].partial

    def upper_bound(self, key: tuple) -> float:
        return self.cache[key].upper_bound(self.rollouts, self.max_reward)

    def complete(self, keys: Sequence[tuple]) -> None:
        """Top the partial estimates among `keys` up to N rollouts (one batched call); their cost
        is added to the estimate that first ran them."""
        todo = [self.cache[k] for k in dict.fromkeys(keys) if self.cache[k].partial]
        self._add_rollouts(todo, [e.budget - len(e.rewards) for e in todo])
        for estimate in todo:
            estimate.partial = False

    def v_values(self, states: Sequence[State]) -> list[Estimate]:
        """V(s) for each state: N rollouts of the policy from the state itself (never adaptive)."""
        estimates = [Estimate(value=0.0, budget=self.rollouts, start=(state.task, state.turns)) for state in states]
        self._add_rollouts(estimates, [self.rollouts] * len(states))
        return estimates
