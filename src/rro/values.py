"""Monte Carlo process rewards on top of the rollout engine.

Q(s, a) is the mean final reward of N rollouts that take action `a` in state `s` and let the
policy finish the episode; V(s) is the same from `s` itself. A terminal action (`submit`) needs no
rollouts: the environment scores it exactly. A state is (task, agent turns so far); estimates are
cached by (task, the actions taken so far, the candidate's parsed action), so the same action in
the same state is never estimated twice, whatever thought came with it. All estimates requested
together go to the engine in one `run_episodes` call.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rro.agent.parse import parse_turn
from rro.envs.base import Env, Task
from rro.policy.base import Policy
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes


@dataclass(frozen=True)
class State:
    task: Task
    turns: tuple[str, ...] = ()  # agent turns taken so far, replayed to restore the state

    def actions(self) -> tuple[str | None, ...]:
        return tuple(parse_turn(turn).action for turn in self.turns)


@dataclass
class Estimate:
    value: float
    rewards: list[float] = field(default_factory=list)
    exact: bool = False  # a terminal action, scored by the environment
    cached: bool = False  # reused: nothing was run for it this time
    rollouts: int = 0  # episodes run for this estimate
    env_steps: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0


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
    ):
        self.policy = policy
        self.make_env = make_env
        self.terminal_actions = terminal_actions
        self.rollouts = rollouts
        self.sampling = sampling
        self.max_steps = max_steps
        self.icl_shots = icl_shots
        self.max_invalid_turns = max_invalid_turns
        self.cache: dict[tuple, Estimate] = {}
        self._calls = 0

    def _run(self, requests: list[EpisodeRequest]):
        # A different seed for every call: the same seed would repeat the same random draws.
        seed = None if self.sampling.seed is None else self.sampling.seed + 1_000_003 * self._calls
        self._calls += 1
        sampling = SamplingConfig(self.sampling.temperature, self.sampling.top_p, self.sampling.max_new_tokens, seed)
        return run_episodes(requests, self.policy, self.make_env, sampling, self.max_steps, self.icl_shots,
                            self.max_invalid_turns)

    def _estimate(self, prefix_states: Sequence[tuple[Task, tuple[str, ...], int]]) -> list[Estimate]:
        """Run `count` episodes from each (task, turns, count) and average their final rewards."""
        requests = [EpisodeRequest(task, turns, tag=i) for i, (task, turns, count) in enumerate(prefix_states)
                    for _ in range(count)]
        estimates = [Estimate(value=0.0) for _ in prefix_states]
        for request, episode in zip(requests, self._run(requests)):
            estimate = estimates[request.tag]
            estimate.rewards.append(episode.reward)
            estimate.rollouts += 1
            estimate.env_steps += len(episode.steps)
            estimate.generated_tokens += sum(step.generated_tokens for step in episode.steps)
            estimate.prompt_tokens += sum(step.prompt_tokens for step in episode.steps)
        for estimate in estimates:
            estimate.value = statistics.fmean(estimate.rewards)
        return estimates

    def q_values(self, items: Sequence[tuple[State, str]]) -> list[Estimate]:
        """Q(s, a) for each (state, candidate turn), computing each distinct key once."""
        keys, todo = [], {}
        for state, turn in items:
            action = parse_turn(turn).action
            key = (state.task.env, state.task.id, state.actions(), action)
            keys.append(key)
            if key not in self.cache and key not in todo:
                terminal = action is not None and action.strip().lower() in self.terminal_actions
                todo[key] = (state.task, state.turns + (turn,), 1 if terminal else self.rollouts, terminal)
        fresh = self._estimate([(task, turns, count) for task, turns, count, _ in todo.values()]) if todo else []
        new_keys = set(todo)
        for key, estimate, (_, _, _, terminal) in zip(todo, fresh, todo.values()):
            estimate.exact = terminal
            self.cache[key] = estimate
        results, seen = [], set()
        for key in keys:
            estimate = self.cache[key]
            if key in new_keys and key not in seen:
                seen.add(key)
                results.append(estimate)
            else:  # estimated earlier (or earlier in this batch): no cost this time
                results.append(Estimate(estimate.value, estimate.rewards, estimate.exact, cached=True))
        return results

    def v_values(self, states: Sequence[State]) -> list[Estimate]:
        """V(s) for each state: N rollouts of the policy from the state itself."""
        return self._estimate([(state.task, state.turns, self.rollouts) for state in states])
