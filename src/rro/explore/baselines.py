"""The baselines' pair collection: IPR-style (step level, along the expert trajectory) and
ETO-style (outcome level, whole trajectories).

- `ipr`: walk the expert's trajectory; at each expert step sample one policy action, estimate
  Q(s, expert action) and Q(s, policy action), and pair (expert chosen, policy rejected) when the
  expert's value exceeds the policy's by more than `tau`.
- `outcome`: sample one whole trajectory per task and compare its final reward with the expert's;
  pair (expert trajectory chosen, sampled rejected) when the rewards differ by more than `tau`.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from rro.agent.parse import parse_turn
from rro.agent.prompts import agent_message, conversation_start
from rro.agent.trajectory import Episode
from rro.config import ExploreConfig
from rro.envs.base import Env, EnvSpec, Task
from rro.explore.rule import prefers_expert
from rro.explore.walk import estimate_cost
from rro.policy.base import Policy
from rro.rollout import EpisodeRequest, SamplingConfig, apply_turn, run_episodes, run_expert_episode, start_episode
from rro.seeds import state_seed
from rro.values import MonteCarloValues, State


@dataclass
class _ExpertWalk:
    """One task walked along its expert trajectory."""

    task: Task
    env: Env
    episode: Episode
    expert: Generator[str, str, None]
    expert_turn: str | None  # the expert's next turn; None once the walk is over
    record: dict[str, Any]

    @property
    def state(self) -> State:
        return State(self.task, tuple(step.turn for step in self.episode.steps))


def _next_turn(expert: Generator[str, str, None], observation: str) -> str | None:
    try:
        return expert.send(observation)
    except StopIteration:
        return None


def ipr_tasks(tasks: list[Task], policy: Policy, values: MonteCarloValues, make_env, env_spec: EnvSpec,
              settings: ExploreConfig, icl_shots: int = 0) -> list[dict[str, Any]]:
    walks = []
    for task in tasks:
        env = make_env()
        expert = env_spec.expert(task)
        record = {"task_id": task.id, "strategy": "ipr", "steps": [], "pairs": [], "values": [], "end": ""}
        walks.append(_ExpertWalk(task, env, start_episode(env, task, policy.name, icl_shots), expert, next(expert),
                                 record))
    while active := [w for w in walks if w.expert_turn is not None]:
        started = time.perf_counter()
        samples = policy.generate([w.episode.messages for w in active], n=1, temperature=settings.temperature,
                                  top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                                  seed=[state_seed(settings.seed, "candidate", w.task.env, w.task.id, w.state.turns, 0)
                                        for w in active])
        # Two estimates per task, in order: the expert's action, then the policy's.
        estimates = values.q_values([item for w, (sample,) in zip(active, samples)
                                     for item in ((w.state, w.expert_turn), (w.state, sample.text))])
        for i, (walk, (sample,)) in enumerate(zip(active, samples)):
            q_expert, q_agent = estimates[2 * i], estimates[2 * i + 1]
            env = walk.state.task.env
            expert_action, agent_action = parse_turn(walk.expert_turn, env).action, parse_turn(sample.text, env).action
            step = len(walk.episode.steps)
            if agent_action != expert_action and prefers_expert(q_expert.value, q_agent.value, settings.tau):
                walk.record["pairs"].append({
                    "prompt": [dict(m) for m in walk.episode.messages],
                    "chosen": [agent_message(walk.expert_turn)],
                    "rejected": [agent_message(sample.text)],
                    "task_id": walk.task.id, "env": walk.task.env, "step": step,
                    "q_chosen": q_expert.value, "q_rejected": q_agent.value,
                    "prev_value": None, "strategy": "ipr",
                })
            walk.record["steps"].append({
                "task_id": walk.task.id, "step": step, "candidates": 1,
                "distinct_actions": 1, "rose": None, "bar": None, "chosen": None, "q_values": [q_agent.value],
                "chosen_q": q_expert.value,
                "candidate_turns": [sample.text], "candidate_actions": [agent_action],
                "candidate_generated_tokens": sample.generated_tokens, "candidate_prompt_tokens": sample.prompt_tokens,
                **estimate_cost([q_expert, q_agent]), "wall_s": time.perf_counter() - started,
            })
            walk.record["values"].append(q_expert.value)
            observation = apply_turn(walk.env, walk.episode, walk.expert_turn, settings.max_steps)
            walk.expert_turn = None if walk.episode.done else _next_turn(walk.expert, observation)
            if walk.expert_turn is None:
                walk.record.update(end=walk.episode.termination, reward=walk.episode.reward,
                                   turns=[s.turn for s in walk.episode.steps])
                walk.env.close()
    return [walk.record for walk in walks]


def outcome_tasks(tasks: list[Task], policy: Policy, make_env, env_spec: EnvSpec, settings: ExploreConfig,
                  icl_shots: int = 0) -> list[dict[str, Any]]:
    started = time.perf_counter()
    sampling = SamplingConfig(settings.temperature, settings.top_p, settings.max_new_tokens, settings.seed)
    sampled = run_episodes([EpisodeRequest(t) for t in tasks], policy, make_env, sampling, settings.max_steps,
                           icl_shots, settings.max_invalid_turns)
    records = []
    env = make_env()
    for task, trajectory in zip(tasks, sampled):
        expert = run_expert_episode(env_spec, env, task, settings.max_steps)
        # The prompt: the opening messages (instruction, example when used, task); the expert's
        # episode opens without the example, so its own opening is cut at its own length.
        start = len(conversation_start(task.env, "", icl_shots))
        expert_start = len(conversation_start(task.env, "", 0))
        pairs = []
        if prefers_expert(expert.reward, trajectory.reward, settings.tau):
            pairs.append({
                "prompt": trajectory.messages[:start],
                "chosen": expert.messages[expert_start:],
                "rejected": trajectory.messages[start:],
                "task_id": task.id, "env": task.env, "step": 0,
                "q_chosen": expert.reward, "q_rejected": trajectory.reward,
                "prev_value": None, "strategy": "outcome",
            })
        steps = [{
            "task_id": task.id, "step": 0, "candidates": 1, "distinct_actions": 1, "rose": None, "bar": None, "chosen": None,
            "q_values": [trajectory.reward], "chosen_q": expert.reward,
            "candidate_generated_tokens": sum(s.generated_tokens for s in trajectory.steps),
            "candidate_prompt_tokens": sum(s.prompt_tokens for s in trajectory.steps),
            "rollouts": 0, "env_steps": len(trajectory.steps), "rollout_generated_tokens": 0,
            "rollout_prompt_tokens": 0, "cache_hits": 0, "exact": 0,
            "wall_s": (time.perf_counter() - started) / len(tasks),
        }]
        records.append({"task_id": task.id, "strategy": "outcome", "steps": steps, "pairs": pairs,
                        "values": [trajectory.reward], "end": trajectory.termination, "reward": trajectory.reward,
                        "turns": [s.turn for s in trajectory.steps]})
    env.close()
    return records
