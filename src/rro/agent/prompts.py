"""The one conversation format used for SFT, sampling, rollouts, DPO and evaluation.

A conversation opens with a user message holding the environment's instruction and the task's
first observation, optionally preceded by the environment's worked example as real chat turns
(both come from its `EnvSpec`). Agent turns are assistant messages; observations are user messages
(`Observation: ...`). Models render it with their own chat template.
"""

from __future__ import annotations

from rro.envs.base import spec

NEW_TASK = "Now a new task.\n\n"


def conversation_start(env: str, observation: str, icl_shots: int = 0) -> list[dict]:
    """The opening messages of an episode: the instruction and the task, after the worked example
    when `icl_shots` > 0 (one example is all we ship; more would not fit small contexts)."""
    env_spec = spec(env)
    instruction, example = env_spec.instruction, env_spec.example
    if icl_shots == 0 or example is None:
        return [{"role": "user", "content": f"{instruction}\n\n{observation}"}]
    messages = [{"role": "user", "content": f"{instruction}\n\n{example.observation}"}]
    for turn, example_observation in example.steps:
        messages.append(agent_message(turn))
        if example_observation is not None:
            messages.append(observation_message(example_observation))
    messages.append({"role": "user", "content": NEW_TASK + observation})
    return messages


def observation_message(observation: str) -> dict:
    return {"role": "user", "content": f"Observation: {observation}"}


def agent_message(turn: str) -> dict:
    return {"role": "assistant", "content": turn}
