"""Exploration-shaped sampling through each policy backend, side by side in one run.

The workload is what Monte Carlo values ask of a policy: states cut from expert trajectories
(InterCode-SQL train tasks, the state after the expert's first `--prefix-turns` turns), and `--rollouts`
rollouts from each state, run by the rollout engine to the end of the episode. Every backend runs the
same requests with the same sampling settings; each backend's start-up (model load, engine start)
is timed separately and left out of its tokens/s. The vLLM backend also reports how many prompt
tokens it computed and how many its prefix cache served.

    python bench/backend_throughput.py --backends hf,vllm [--model smollm2-135m] [--tasks 8] [--rollouts 5]
        [--prefix-turns 1] [--max-steps 6] [--max-new-tokens 96]

Machines shared with other jobs make absolute figures noisy; the ratio of two backends measured in
one run is the figure to read.
"""

from __future__ import annotations

import argparse
import time

from rro.envs import make
from rro.envs.base import spec
from rro.envs.intercode_sql import load_tasks
from rro.policy import load_policy, release_engines
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes, run_expert_episode
from rro.terminal import quiet_libraries


def expert_states(tasks, prefix_turns: int, max_steps: int) -> list[EpisodeRequest]:
    """One state per task: the expert's first `prefix_turns` turns (fewer when its episode is shorter)."""
    env_spec, env = spec("intercode-sql"), make("intercode-sql")
    states = []
    try:
        for task in tasks:
            episode = run_expert_episode(env_spec, env, task, max_steps)
            turns = tuple(step.turn for step in episode.steps)[: min(prefix_turns, len(episode.steps) - 1)]
            states.append(EpisodeRequest(task, prefix=turns))
    finally:
        env.close()
    return states


def run_backend(backend: str, args, requests: list[EpisodeRequest]) -> dict:
    options = {"dtype": args.dtype}
    if backend == "vllm" and args.gpu_memory_utilization:
        options["gpu_memory_utilization"] = args.gpu_memory_utilization
    started = time.perf_counter()
    policy = load_policy(args.model, backend, **options)
    policy.generate([[{"role": "user", "content": "warm up"}]], max_new_tokens=4)
    startup = time.perf_counter() - started
    cached_before = getattr(policy, "prompt_tokens_cached", 0)
    sampling = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=0)
    started = time.perf_counter()
    episodes = run_episodes(requests, policy, lambda: make("intercode-sql"), sampling, max_steps=args.max_steps,
                            icl_shots=args.icl_shots)
    seconds = time.perf_counter() - started
    # The replayed expert turns cost nothing: count the sampled turns only.
    steps = [step for request, episode in zip(requests, episodes) for step in episode.steps[len(request.prefix):]]
    result = {
        "backend": backend, "startup_s": startup, "seconds": seconds,
        "generated": sum(s.generated_tokens for s in steps), "prompt": sum(s.prompt_tokens for s in steps),
        "turns": len(steps), "reward": sum(e.reward for e in episodes) / len(episodes),
        "cached": getattr(policy, "prompt_tokens_cached", 0) - cached_before if hasattr(policy, "prompt_tokens_cached") else None,
    }
    del policy
    release_engines()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--prefix-turns", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--icl-shots", type=int, default=1)
    parser.add_argument("--gpu-memory-utilization", type=float, default=None)
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    states = expert_states(load_tasks("train")[: args.tasks], args.prefix_turns, args.max_steps)
    requests = [state for state in states for _ in range(args.rollouts)]
    print(f"model {args.model}, {len(states)} states x {args.rollouts} rollouts to the end of the episode, "
          f"max_steps {args.max_steps}, max_new_tokens {args.max_new_tokens}, T={args.temperature}, "
          f"icl_shots {args.icl_shots}", flush=True)
    results = []
    for backend in args.backends.split(","):
        result = run_backend(backend, args, requests)
        results.append(result)
        rate = result["generated"] / result["seconds"]
        cached = "" if result["cached"] is None else (
            f", prompt tokens computed {result['prompt'] - result['cached']} / cached {result['cached']}")
        print(f"{backend:6s} start-up {result['startup_s']:.1f} s; {result['turns']} turns, {result['generated']} generated "
              f"tokens in {result['seconds']:.1f} s = {rate:.1f} tokens/s; prompt tokens {result['prompt']}{cached}; "
              f"mean reward {result['reward']:.3f}", flush=True)
    if len(results) > 1:
        base = results[0]["generated"] / results[0]["seconds"]
        for result in results[1:]:
            print(f"ratio {result['backend']}/{results[0]['backend']} (tokens/s, start-up excluded): "
                  f"{result['generated'] / result['seconds'] / base:.2f}")


if __name__ == "__main__":
    main()
