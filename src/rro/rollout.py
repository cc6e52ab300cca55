"""Where environments and agents meet: running many episodes at once.

`apply_turn` is the one place a model's text becomes an action: it parses the turn, steps the
environment (or answers a malformed turn with an error observation), and records the step and the
chat messages. `run_episodes` drives any number of episodes together: at every step the next turn
of *every* active episode (across tasks, and across the rollouts of one state) goes to the policy
in one batched call; finished episodes drop out and their environments are closed.

Every episode has its own seed (the request's, or one derived from the run's seed, its task, its
prefix and which repeat of them it is in the call), and its turn at step t is sampled with a seed
derived from that and t: an episode's draws do not depend on the other episodes it runs beside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rro.agent.parse import parse_turn
from rro.agent.prompts import agent_message, conversation_start, observation_message
from rro.agent.trajectory import Episode, Step
from rro.envs.base import Env, EnvSpec, Task
from rro.policy.base import Policy
from rro.seeds import derive_seed

# Task fields that are worth keeping on every episode record (for breakdowns and reading).
_RECORDED_FIELDS = ("db", "hardness", "gold", "asin")


def start_episode(env: Env, task: Task, policy: str, icl_shots: int = 0) -> Episode:
    observation = env.reset(task)
    return Episode(
        env=task.env,
        task_id=task.id,
        policy=policy,
        messages=conversation_start(task.env, observation, icl_shots),
        task_fields={k: task.fields[k] for k in _RECORDED_FIELDS if k in task.fields},
    )


# Consecutive turns without a valid action after which an episode ends as "invalid" (reward 0).
MAX_INVALID_TURNS = 3


def apply_turn(
    env: Env,
    episode: Episode,
    turn: str,
    max_steps: int,
    generated_tokens: int = 0,
    prompt_tokens: int = 0,
    max_invalid_turns: int = MAX_INVALID_TURNS,
) -> str:
    """Apply one agent turn to a running episode; return the observation the agent sees next.

    The episode ends at a terminal action ("submitted"), at `max_steps` ("max_steps", reward 0), or
    after `max_invalid_turns` consecutive turns without a valid action ("invalid", reward 0; 0 = never):
    a model that cannot produce the format would otherwise spend every remaining step repeating itself.
    """
    parsed = parse_turn(turn, episode.env)
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
            prompt_tokens=prompt_tokens,
            info=info,
        )
    )
    episode.messages.append(agent_message(turn))
    if done:
        episode.reward, episode.termination = reward, "submitted"
    elif len(episode.steps) >= max_steps:
        episode.reward, episode.termination = 0.0, "max_steps"  # no terminal action: scores 0
    elif max_invalid_turns and all(step.action is None for step in episode.steps[-max_invalid_turns:]) \
            and len(episode.steps) >= max_invalid_turns:
        episode.reward, episode.termination = 0.0, "invalid"
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


@dataclass(frozen=True)
class EpisodeRequest:
    """An episode to run: a task, and optionally the agent turns already taken (replayed first)."""

    task: Task
    prefix: tuple[str, ...] = ()
    tag: object = None  # the caller's label, handed back on the episode's result
    seed: int | None = None  # this episode's sampling seed; None: derived from the run's seed (see run_episodes)


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = 0


@dataclass
class _Running:
    index: int  # position in the caller's request list
    request: EpisodeRequest
    env: Env
    episode: Episode
    started: float = field(default_factory=time.perf_counter)


def run_episodes(
    requests: Sequence[EpisodeRequest],
    policy: Policy,
    make_env: Callable[[], Env],
    sampling: SamplingConfig = SamplingConfig(),
    max_steps: int = 10,
    icl_shots: int = 0,
    max_invalid_turns: int = MAX_INVALID_TURNS,
    on_finished: Callable[[EpisodeRequest, Episode], None] | None = None,
) -> list[Episode]:
    """Run all `requests` to the end, batching every active episode's next turn into one call."""
    running: list[_Running] = []
    finished: dict[int, Episode] = {}
    seeds = _episode_seeds(requests, sampling.seed)

    def finish(slot: _Running) -> None:
        slot.env.close()
        slot.episode.wall_s = time.perf_counter() - slot.started
        finished[slot.index] = slot.episode
        if on_finished:
            on_finished(slot.request, slot.episode)

    for index, request in enumerate(requests):
        env = make_env()
        slot = _Running(index, request, env, start_episode(env, request.task, policy.name, icl_shots))
        for turn in request.prefix:  # restore the state by replaying the turns already taken
            apply_turn(env, slot.episode, turn, max_steps, max_invalid_turns=max_invalid_turns)
        if slot.episode.done:
            finish(slot)
        else:
            running.append(slot)

    while running:
        completions = policy.generate(
            [slot.episode.messages for slot in running],
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=sampling.max_new_tokens,
            seed=None if seeds is None else [derive_seed(seeds[slot.index], len(slot.episode.steps)) for slot in running],
        )
        still_running = []
        for slot, (completion,) in zip(running, completions):
            apply_turn(slot.env, slot.episode, completion.text, max_steps,
                       completion.generated_tokens, completion.prompt_tokens, max_invalid_turns)
            if slot.episode.done:
                finish(slot)
            else:
                still_running.append(slot)
        running = still_running
    return [finished[i] for i in range(len(requests))]


def _episode_seeds(requests: Sequence[EpisodeRequest], seed: int | None) -> list[int] | None:
    """Each request's own seed, or one derived from the run's seed, its task and prefix, and how many
    equal requests came before it in this call (so that repeats of one start differ)."""
    if seed is None:
        return None
    repeats: dict[tuple, int] = {}
    seeds = []
    for request in requests:
        start = (request.task.env, request.task.id, request.prefix)
        repeat = repeats[start] = repeats.get(start, -1) + 1
        seeds.append(request.seed if request.seed is not None else derive_seed(seed, *start, repeat))
    return seeds
