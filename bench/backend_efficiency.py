"""Speed against the limit: one whole exploration through every backend that runs the model.

Each backend explores the same InterCode-SQL train tasks with the same settings and seed (an
`rro explore` run: candidates, Monte Carlo rollouts, values, pairs), one backend after the other:

- `hf`: transformers in this process (rro's `pick_dtype`: bf16 where the CPU has it, else float32);
- `vllm`: the in-process vLLM engine (prefix caching; same dtype rule);
- `llama`: llama.cpp's server (llama-cpp-python) on the model's GGUF file itself (Q4_K_M), started
  on 127.0.0.1 and reached through rro's `openai` backend.

For each it prints generated tokens per second of generation (the time spent inside the policy's
`generate`; the exploration's wall time, environment and rro included, beside it), the prompt tokens the exploration asked for against
those the backend computed (the rest came from a prefix cache, or from a prefill shared by the
samples of one request), and its efficiency against this machine's compute bound:

    efficiency = FLOPs of the tokens it computed / seconds / measured matmul FLOPS of its dtype

FLOPs per computed token: 2 x the transformer layers' parameters, plus attention (4 x layers x
hidden x the token's position: QK^T and AV), plus 2 x the LM head's parameters for every generated
token (logits are taken at the last prompt position and at each generated token only). Padding rows
and rows that finished early in a transformers batch are computed but not counted: they are waste,
and show as lower efficiency. The matmul bound is torch.matmul on square matrices in this process, on
every core, best of several trials (float32, bfloat16, and int8 -> int32 via torch._int_mm);
measured before and after the backends, the higher taken. llama.cpp's Q4_K_M kernels dequantise
4-bit weights and take int8 dot products with int8-quantised activations: its efficiency is given
against both the float32 and the int8 bound.

The machine is often shared: the load average is printed beside every figure, and every rate is
also given per CPU-second (the CPU time the backend's processes used while generating, against the
matmul's own FLOPS per CPU-second), which other jobs on the machine disturb far less than wall time.
Read ratios between backends measured in one run, not absolute numbers.

    python bench/backend_efficiency.py --model qwen2.5-coder-0.5b --backends llama,hf,vllm \\
        [--llama-python /path/to/venv/bin/python] [--threads 1] [--tasks 2] [--rollouts 2] [--k 2] [--max-steps 2]

vLLM and the transformers backend run in this interpreter (use the one vLLM is installed in);
llama.cpp's server runs in `--llama-python` (default: this interpreter), which needs
`llama-cpp-python[server]`. A backend that cannot run here is reported and skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch
from safetensors import safe_open

from rro.config import ExploreConfig
from rro.explore import explore
from rro.policy import release_engines
from rro.policy.hf import cpu_description, cpu_supports_bf16
from rro.policy.models import gguf_path, resolve_model
from rro.terminal import quiet_libraries

# --- the machine's compute bound ---------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) of this process and every process it started that is
    still running (vLLM's engine core, llama.cpp's server)."""
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@dataclass(frozen=True)
class Rate:
    """FLOPS per second of wall time, and per CPU-second (the second is what a shared machine lets us read)."""

    wall: float
    cpu: float


def matmul_flops(dtype: torch.dtype, size: int = 1024, seconds: float = 1.0, trials: int = 3) -> Rate:
    """Best measured FLOPS of a size x size matmul in `dtype` (int8: torch._int_mm, int32 results)."""
    if dtype == torch.int8:
        a = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        multiply = torch._int_mm
    else:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        multiply = torch.matmul
    for _ in range(2):
        multiply(a, b)
    best_wall = best_cpu = 0.0
    for _ in range(trials):
        count, started, cpu_started = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - started) < seconds:
            multiply(a, b)
            count += 1
        flops = 2 * size**3 * count
        best_wall = max(best_wall, flops / elapsed)
        best_cpu = max(best_cpu, flops / (time.process_time() - cpu_started))
    return Rate(best_wall, best_cpu)


BOUND_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.int8}


def measure_bounds() -> dict[str, Rate]:
    return {name: matmul_flops(dtype) for name, dtype in BOUND_DTYPES.items()}


def show_bounds(bounds: dict[str, Rate]) -> str:
    return ", ".join(f"{name} {rate.wall / 1e9:.1f} ({rate.cpu / 1e9:.1f} per CPU-second)" for name, rate in bounds.items())


def load_average() -> str:
    return "load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


# --- the model's FLOPs per token ---------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    layer_parameters: int  # everything but the token embedding and the LM head
    head_parameters: int  # the LM head (vocab x hidden)
    layers: int
    attention_width: int  # query heads x head size

    @classmethod
    def of_checkpoint(cls, path: str) -> ModelShape:
        config = json.loads((Path(path) / "config.json").read_text())
        sizes = {}
        for file in Path(path).glob("*.safetensors"):
            with safe_open(file, "pt") as tensors:
                for name in tensors.keys():
                    sizes[name] = torch.Size(tensors.get_slice(name).get_shape()).numel()
        embedding = sum(n for name, n in sizes.items() if name.endswith("embed_tokens.weight"))
        head = config["vocab_size"] * config["hidden_size"]  # tied or not, the head is computed
        layers = sum(sizes.values()) - embedding - sizes.get("lm_head.weight", 0)
        width = config["num_attention_heads"] * config.get("head_dim", config["hidden_size"] // config["num_attention_heads"])
        return cls(layers, head, config["num_hidden_layers"], width)

    def attention(self, positions: float) -> float:
        """FLOPs of attention for tokens whose positions add up to `positions` (QK^T and AV, all layers)."""
        return 4 * self.layers * self.attention_width * positions


@dataclass
class Metered:
    """A policy that counts every completion it hands out, (prompt tokens, generated tokens), and the
    seconds spent generating them (an exploration's other time is the environment's and rro's own)."""

    policy: object
    completions: list[tuple[int, int]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def __getattr__(self, name):
        return getattr(self.policy, name)

    def generate(self, conversations, n=1, **sampling):
        started, cpu_started = time.perf_counter(), cpu_seconds()
        results = self.policy.generate(conversations, n=n, **sampling)
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += cpu_seconds() - cpu_started
        self.completions += [(c.prompt_tokens, c.generated_tokens) for row in results for c in row]
        return results


def computed_flops(shape: ModelShape, completions: list[tuple[int, int]], prompt_computed: int) -> float:
    """FLOPs of the tokens a backend computed. Generated tokens are all computed, at their positions.
    Of the prompt tokens, a prefix cache serves each prompt's beginning, so the computed ones are the
    tail; where a backend reports only its total, every prompt is taken to have the same share computed."""
    asked = sum(prompt for prompt, _ in completions)
    share = prompt_computed / asked if asked else 0.0
    generated = sum(g for _, g in completions)
    positions = 0.0
    for prompt, g in completions:
        tail = share * prompt
        positions += tail * prompt - tail * (tail + 1) / 2  # positions prompt - tail ... prompt - 1
        positions += g * prompt + g * (g - 1) / 2  # positions prompt ... prompt + g - 1
    return 2 * shape.layer_parameters * (prompt_computed + generated) + 2 * shape.head_parameters * generated \
        + shape.attention(positions)


# --- the backends ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on one GGUF file, on 127.0.0.1 only, verbose: its
    log says how much of each request's prompt its one KV cache already held. It serves one request
    at a time and ignores `n` (rro's openai backend asks for the other samples one by one)."""

    def __init__(self, python: str, gguf: Path, alias: str, threads: int, context: int):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)
        self.port = free_port()
        self.process = subprocess.Popen(
            [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(context),
             # (llama-cpp-python's default is half the cores for decoding)
             "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "true"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp's server exited ({self.process.returncode}): {self.tail()}")
            try:
                urllib.request.urlopen(self.url + "/models", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("llama.cpp's server did not start within 300 s")

    def tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def prompt_tokens_reused(self) -> tuple[int, int]:
        """Prompt tokens served from llama.cpp's KV cache so far, as its log tells per request: the
        length of each prefix-match hit, and how many prompts were found whole in the cache."""
        text = Path(self.log.name).read_text(errors="replace")
        hits = sum(int(n) for n in re.findall(r"Llama\.generate: (\d+) prefix-match hit", text))
        return hits, text.count("full prompt already cached")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def why_not(backend: str, args) -> str | None:
    """Why `backend` cannot run here, or None."""
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed in this interpreter"
    if backend == "llama":
        probe = subprocess.run([args.llama_python, "-c", "import llama_cpp.server"], capture_output=True)
        if probe.returncode != 0:
            return f"{args.llama_python} has no llama-cpp-python[server]"
    return None


def run_backend(backend: str, args, shape: ModelShape) -> dict:
    server = None
    options = dict(model=args.model, split="train", limit=args.tasks, strategy=args.strategy, rollouts=args.rollouts,
                   max_candidates=args.k, max_steps=args.max_steps, max_new_tokens=args.max_new_tokens,
                   tasks_per_batch=args.tasks, seed=args.seed, output=args.output / backend)
    started = time.perf_counter()
    if backend == "llama":
        server = LlamaServer(args.llama_python, gguf_path(args.model), args.model, args.threads, args.n_ctx)
        config = ExploreConfig(**options, policy_backend="openai", base_url=server.url)
        dtype = "Q4_K_M weights, int8 dot products"
    else:
        engine = {"gpu_memory_utilization": args.gpu_memory_utilization, "max_model_len": args.n_ctx}
        config = ExploreConfig(**options, policy_backend=backend, **(engine if backend == "vllm" else {}))
    policy = config.load_policy()
    if backend != "llama":
        dtype = str(policy.dtype).removeprefix("torch.")
    startup = time.perf_counter() - started
    shutil.rmtree(config.output, ignore_errors=True)  # a finished run would be a no-op
    metered = Metered(policy)
    before = (getattr(policy, "prompt_tokens_total", 0), getattr(policy, "prompt_tokens_cached", 0))
    load_before = load_average()
    started = time.perf_counter()
    try:
        stats = explore(config, policy=metered)
        wall = time.perf_counter() - started
    finally:
        if server:
            server.stop()
    asked = sum(prompt for prompt, _ in metered.completions)
    if backend == "vllm":
        computed = (policy.prompt_tokens_total - before[0]) - (policy.prompt_tokens_cached - before[1])
    elif backend == "llama":
        # One request per completion. A prompt found whole in the cache is counted at the mean length.
        hits, whole = server.prompt_tokens_reused()
        computed = asked - hits - round(whole * asked / max(len(metered.completions), 1))
        Path(server.log.name).unlink()
    else:
        computed = asked  # the transformers backend prefills every sample's prompt in full
    del policy
    metered.policy = None  # free the model before the next backend loads its own
    release_engines()
    generated = sum(g for _, g in metered.completions)
    return {
        "backend": backend, "dtype": dtype, "startup_s": startup, "wall": wall, "seconds": metered.seconds, "cpu_seconds": metered.cpu_seconds, "generated": generated,
        "prompt_asked": asked, "prompt_computed": computed, "completions": len(metered.completions),
        "flops": computed_flops(shape, metered.completions, computed), "tasks": stats["tasks"],
        "pairs": stats["pairs"], "rollouts": stats["rollouts"], "load": f"{load_before} -> {load_average()}",
    }


def bounds_of(result: dict, bounds: dict[str, Rate]) -> list[tuple[str, Rate]]:
    """The bounds a backend's efficiency is read against: its own dtype's (llama.cpp: float32 and int8)."""
    if result["backend"] == "llama":
        return [("float32", bounds["float32"]), ("int8", bounds["int8"])]
    return [(result["dtype"], bounds[result["dtype"]])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="a named model (llama needs its GGUF file)")
    parser.add_argument("--backends", default="llama,hf,vllm")
    parser.add_argument("--llama-python", default=sys.executable, help="a Python with llama-cpp-python[server]")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--strategy", default="fixed", choices=["rising", "fixed"])
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.08,
                        help="vLLM's share of memory (on CPU: for weights and KV cache; a small workload needs little)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help=(
        "threads (cores) every backend and the matmul bound use. On a machine busy with other jobs, fewer "
        "threads than cores can be much faster: llama.cpp's threads wait for each other by spinning"))
    parser.add_argument("--n-ctx", type=int, default=4096,
                        help="the longest conversation, in tokens (llama.cpp's context, vLLM's max_model_len)")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/bench-backend-efficiency"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it
    torch.set_num_threads(args.threads)  # the transformers backend and the matmul bound
    if args.threads < (os.cpu_count() or 1):  # vLLM's CPU workers: bind to the first `threads` cores
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0" if args.threads == 1 else f"0-{args.threads - 1}")

    print(f"{cpu_description()}, {os.cpu_count()} cores, native bf16: {'yes' if cpu_supports_bf16() else 'no (AVX2 only: auto = float32)'}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print(f"model {args.model}; exploration: {args.tasks} InterCode-SQL train tasks, {args.strategy}, N={args.rollouts}, "
          f"K={args.k}, max_steps {args.max_steps}, max_new_tokens {args.max_new_tokens}, seed {args.seed}", flush=True)
    shape = ModelShape.of_checkpoint(resolve_model(args.model))
    print(f"FLOPs per computed token: 2 x {shape.layer_parameters / 1e6:.0f}M layer parameters + attention; "
          f"+ 2 x {shape.head_parameters / 1e6:.0f}M LM head per generated token", flush=True)
    bounds = measure_bounds()
    print(f"matmul bound, GFLOPS ({load_average()}): {show_bounds(bounds)}", flush=True)

    results = []
    for backend in args.backends.split(","):
        if reason := why_not(backend, args):
            print(f"{backend:6s} skipped: {reason}", flush=True)
            continue
        try:
            result = run_backend(backend, args, shape)
        except Exception as err:  # one backend that cannot start (memory, a server) must not cost the others
            print(f"{backend:6s} failed: {err}", flush=True)
            release_engines()
            continue
        results.append(result)
        print(f"{backend:6s} {result['dtype']}: start-up {result['startup_s']:.0f} s; {result['tasks']} tasks, "
              f"{result['rollouts']} rollouts, {result['pairs']} pairs in {result['wall']:.0f} s; "
              f"{result['completions']} completions generated in {result['seconds']:.0f} s "
              f"({result['cpu_seconds']:.0f} CPU-seconds): {result['generated']} tokens; prompt tokens asked "
              f"{result['prompt_asked']}, computed {result['prompt_computed']} ({result['load']})", flush=True)

    after = measure_bounds()
    print(f"matmul bound again, GFLOPS ({load_average()}): {show_bounds(after)}; the higher is the bound", flush=True)
    bounds = {k: Rate(max(bounds[k].wall, after[k].wall), max(bounds[k].cpu, after[k].cpu)) for k in bounds}
    if not results:
        return
    print("\nPer second of generation, and per CPU-second it used (the figure a shared machine leaves comparable):")
    print(f"{'backend':8}{'dtype':>10}{'tokens/s':>10}{'per CPU-s':>10}{'prompt asked':>14}{'computed':>10}{'cached':>8}"
          f"{'GFLOPS':>8}{'per CPU-s':>10}  efficiency: computed FLOPS / matmul bound (per CPU-second)")
    for result in results:
        achieved = Rate(result["flops"] / result["seconds"], result["flops"] / result["cpu_seconds"])
        reused = 1 - result["prompt_computed"] / result["prompt_asked"] if result["prompt_asked"] else 0.0
        against = ", ".join(f"{achieved.wall / bound.wall:.1%} ({achieved.cpu / bound.cpu:.1%}) of {name}"
                            for name, bound in bounds_of(result, bounds))
        dtype = "Q4_K_M" if result["backend"] == "llama" else result["dtype"]
        print(f"{result['backend']:8}{dtype:>10}{result['generated'] / result['seconds']:>10.2f}"
              f"{result['generated'] / result['cpu_seconds']:>10.2f}{result['prompt_asked']:>14}"
              f"{result['prompt_computed']:>10}{reused:>8.0%}{achieved.wall / 1e9:>8.1f}{achieved.cpu / 1e9:>10.1f}  {against}")
    for per, key in (("second", "seconds"), ("CPU-second", "cpu_seconds")) if len(results) > 1 else ():
        fastest = max(results, key=lambda r: r["generated"] / r[key])
        print(f"fastest per {per}: {fastest['backend']}; " + ", ".join(
            f"{(fastest['generated'] / fastest[key]) / (r['generated'] / r[key]):.2f}x {r['backend']}"
            for r in results if r is not fastest))


if __name__ == "__main__":
    main()
