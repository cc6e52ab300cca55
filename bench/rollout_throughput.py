"""Rollout engine throughput vs raw batched generation, on the same model, hardware and prompts.

(b) runs full InterCode-SQL episodes through the rollout engine (every active episode's turn in
one batched call) and counts generated tokens per second of wall time, environment included.
(a) then replays exactly the batches the engine sent (same conversations, same sampling settings)
through the policy's raw `generate` — the practical limit of the backend on these prompts.
The ratio (b)/(a) is what orchestration and the environment cost (goal: >= 0.8).

    python bench/rollout_throughput.py [--model smollm2-135m] [--tasks 16] [--max-steps 4] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import time

from rro.envs import make
from rro.envs.intercode_sql import load_tasks
from rro.policy.hf import HFPolicy
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes
from rro.terminal import quiet_libraries


class RecordingPolicy:
    """Passes calls through to a policy, keeping each call's inputs and the time spent in it."""

    def __init__(self, policy):
        self.policy = policy
        self.name = policy.name
        self.calls: list[tuple[list, dict]] = []
        self.seconds = 0.0

    def generate(self, conversations, **kwargs):
        self.calls.append(([list(c) for c in conversations], kwargs))
        started = time.perf_counter()
        try:
            return self.policy.generate(conversations, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    policy = HFPolicy(args.model, dtype=args.dtype)
    tasks = load_tasks("test")[: args.tasks]
    sampling = SamplingConfig(temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=0)
    recorder = RecordingPolicy(policy)
    policy.generate([[{"role": "user", "content": "warm up"}]], max_new_tokens=4)

    started = time.perf_counter()
    episodes = run_episodes([EpisodeRequest(t) for t in tasks], recorder, lambda: make("intercode-sql", backend=args.backend),
                            sampling, max_steps=args.max_steps, icl_shots=1)
    engine_seconds = time.perf_counter() - started
    engine_tokens = sum(s.generated_tokens for e in episodes for s in e.steps)

    started = time.perf_counter()
    raw_tokens = 0
    for conversations, kwargs in recorder.calls:
        raw_tokens += sum(c[0].generated_tokens for c in policy.generate(conversations, **kwargs))
    raw_seconds = time.perf_counter() - started

    engine_rate, raw_rate = engine_tokens / engine_seconds, raw_tokens / raw_seconds
    print(f"model {args.model} ({policy.dtype}, {policy.device}), {len(tasks)} tasks, max_steps {args.max_steps}, "
          f"max_new_tokens {args.max_new_tokens}, T={args.temperature}, backend {args.backend}")
    print(f"policy calls: {len(recorder.calls)}, batch sizes {[len(c) for c, _ in recorder.calls]}")
    print(f"(a) raw generate on the same batches: {raw_tokens} tokens in {raw_seconds:.1f} s = {raw_rate:.1f} tokens/s")
    print(f"(b) rollout engine, full episodes:    {engine_tokens} tokens in {engine_seconds:.1f} s = {engine_rate:.1f} tokens/s"
          f" ({recorder.seconds:.1f} s inside the policy, {engine_seconds - recorder.seconds:.2f} s outside it)")
    print(f"ratio (b)/(a): {engine_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
