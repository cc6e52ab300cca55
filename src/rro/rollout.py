"""Where environments and agents meet: running episodes turn by turn.

`apply_turn` is the one place a model's text becomes an action in an environment: it parses the
turn, steps the environment (or answers a malformed turn with an error observation), and records
the step and the chat messages.
"""

from __future__ import annotations

import time

from rro.agent.parse import parse_turn
from rro.agent.prompts import agent_message, first_message, observation_message
from rro.agent.trajectory import Episode, Step
from rro.envs.base import Env, EnvSpec, Task

# Task fields that are worth keeping on every episode record (for breakdowns and reading).
_RECORDED_FIELDS = ("db", "hardness", "gold")


def start_episode(env: Env, task: Task, policy: str, icl_shots: int = 0) -> Episode:
    observation = env.reset(task)
    return Episode(
        env=task.env,
        task_id=task.id,
        policy=policy,
        messages=[first_message(task.env, observation, icl_shots)],
        task_fields={k: task.fields[k] for k in _RECORDED_FIELDS if k in task.fields},
    )


def apply_turn(env: Env, episode: Episode, turn: str, max_steps: int, generated_tokens: int = 0) -> str:
    """Apply one agent turn to a running episode; return the observation the agent sees next."""
    parsed = parse_turn(turn)
    if parsed.action is None:
        observation, reward, done, info = parsed.observation, 0.0, False, {"error": parsed.error}
    else:
        observation, reward, done, info = env.step(parsed.action)
    episode.steps.append(
        Step(
            turn=turn,
            action=parsed.action,
            well_formed=parsed.well_formed,
            observation=observation,
            reward=reward,
            done=done,
            generated_tokens=generated_tokens,
            info=info,
        )
    )
    episode.messages.append(agent_message(turn))
    if done:
        episode.reward, episode.termination = reward, "submitted"
    elif len(episode.steps) >= max_steps:
        episode.reward, episode.termination = 0.0, "max_steps"  # no terminal action: scores 0
    else:
        episode.messages.append(observation_message(observation))
    return observation


def run_expert_episode(env_spec: EnvSpec, env: Env, task: Task, max_steps: int) -> Episode:
    """One episode of the environment's oracle, recorded like any agent's."""
    started = time.perf_counter()
    episode = start_episode(env, task, policy="expert")
    turns = env_spec.expert(task)
    try:
        turn = next(turns)
        while True:
            observation = apply_turn(env, episode, turn, max_steps)
            if episode.done:
                break
            turn = turns.send(observation)
    except StopIteration:
        if not episode.done:  # the oracle ran out of turns without ending the episode
            episode.termination = "invalid"
    episode.wall_s = time.perf_counter() - started
    return episode
