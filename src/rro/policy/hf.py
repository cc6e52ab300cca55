"""The transformers backend: batched generation on CPU or GPU.

Prompts are rendered with the model's own chat template, sorted by length so that each batch
wastes little padding, left-padded, and cut into batches bounded both in rows and in tokens
(rows × (longest prompt + new tokens)), which bounds memory.

Seeded sampling is per row: each completion has its own random generator, seeded with its own seed,
and draws its tokens by the Gumbel-max trick (argmax of logits/T plus Gumbel noise samples from
softmax(logits/T)) on top of transformers' greedy search. A completion's tokens therefore depend on
its seed and its prompt only, not on which other rows share its batch, how the batches were cut or
in which order; the one remaining link is numerical: a batch's padding and shape can move a logit
by float rounding (~1e-6 in float32, more in bfloat16), which flips a draw only when two noisy
scores tie that closely.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList
from transformers.utils import logging as transformers_logging

from rro.policy.base import Completion, Seeds, sample_seeds
from rro.policy.models import resolve_model

# Small models often go on to write the observation themselves; the turn is over by then.
STOP_STRINGS = ["\nObservation:"]


CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_lines() -> list[str]:
    """/proc/cpuinfo's lines, none where it cannot be read (not Linux, or a sandbox without /proc)."""
    try:
        return CPUINFO.read_text().splitlines()
    except OSError:
        return []


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel lists them (empty where /proc/cpuinfo cannot be read)."""
    return {flag for line in _cpuinfo_lines() if line.startswith("flags") for flag in line.partition(":")[2].split()}


def cpu_description() -> str:
    """The CPU as the kernel names it, with its family and model: virtual machines often name only the
    vendor line ("AMD EPYC"), and the family and model tell a Zen 3 (AVX2 only) from a Zen 4."""
    fields = {}
    for line in _cpuinfo_lines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "unknown CPU")
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def cpu_supports_bf16() -> bool:
    """Native bf16 matmuls (AVX-512 BF16 or AMX). Without them (AVX2 only) torch and vLLM emulate bf16:
    a 1024x1024 matmul measured 0.3 GFLOPS against 24 in float32, ~80x slower."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def pick_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto`: bfloat16 on GPUs and on CPUs with native bf16 (≈1.9× faster there at equal accuracy),
    float32 elsewhere (bf16 is emulated there, ~80× slower)."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") or cpu_supports_bf16() else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16") from None


class PerRowSampler(LogitsProcessor):
    """Temperature, top-k and top-p, then Gumbel noise from each row's own generator: with greedy
    search on top, row r samples from its own distribution with its own random stream."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int | None, device: str):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float() / self.temperature
        if self.top_k:
            kth = torch.topk(scores, min(self.top_k, scores.shape[-1]), dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True, dim=-1)
            probabilities = torch.softmax(ordered, dim=-1)
            mass_before = probabilities.cumsum(dim=-1) - probabilities  # 0 for the top token: always kept
            drop_sorted = mass_before >= self.top_p
            scores = scores.masked_fill(torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted), float("-inf"))
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g, device=scores.device)
                               for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-20, max=1 - 1e-7)))
        return scores + gumbel


class HFPolicy:
    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        device: str = "auto",
        max_batch_size: int | None = None,
        max_batch_tokens: int | None = None,
    ):
        self.name = model
        self.path = resolve_model(model)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.dtype = pick_dtype(dtype, self.device)
        on_gpu = self.device.startswith("cuda")
        # Measured on 2 CPU cores: throughput stops growing past 16–32 rows.
        self.max_batch_size = max_batch_size or (256 if on_gpu else 32)
        self.max_batch_tokens = max_batch_tokens or (1 << 20 if on_gpu else 32 * 1024)
        started = time.perf_counter()
        transformers_logging.disable_progress_bar()  # rro shows its own progress
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype).to(self.device).eval()
        self.load_seconds = time.perf_counter() - started
        self.stop_token_ids = self._stop_token_ids()

    def _stop_token_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        end_of_turn = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(end_of_turn, int) and end_of_turn != self.tokenizer.unk_token_id:
            ids.add(end_of_turn)
        configured = self.model.generation_config.eos_token_id
        ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
        return sorted(i for i in ids if i is not None)

    def render(self, conversation: list[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _batches(self, jobs: list[tuple[int, list[int]]], max_new_tokens: int) -> list[list[tuple[int, list[int]]]]:
        """Jobs sorted longest first, cut where the next one would break a row or token bound."""
        jobs = sorted(jobs, key=lambda job: -len(job[1]))
        batches, current = [], []
        for job in jobs:
            longest = len(current[0][1]) if current else len(job[1])
            rows = len(current) + 1
            if current and (rows > self.max_batch_size or rows * (longest + max_new_tokens) > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(job)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def generate(
        self,
        conversations: list[list[dict[str, str]]],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: Seeds = None,
    ) -> list[list[Completion]]:
        prompts = [self.render(conversation) for conversation in conversations]
        # Job k is sample k % n of conversation k // n.
        jobs = [(k, prompts[k // n]) for k in range(len(prompts) * n)]
        seeds = sample_seeds(seed, len(prompts), n) if temperature > 0 else None
        results: dict[int, Completion] = {}
        greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        for batch in self._batches(jobs, max_new_tokens):
            if temperature == 0:
                sampling = greedy
            elif seeds is None:  # unseeded: transformers' own sampling
                sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
            else:
                rows = [seeds[job // n][job % n] for job, _ in batch]
                sampler = PerRowSampler(rows, temperature, top_p, self.model.generation_config.top_k, self.device)
                sampling = {**greedy, "logits_processor": LogitsProcessorList([sampler])}
            width = max(len(ids) for _, ids in batch)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for _, ids in batch], device=self.device)
            attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in batch], device=self.device)
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                eos_token_id=self.stop_token_ids,
                pad_token_id=pad,
                stop_strings=STOP_STRINGS or None,
                tokenizer=self.tokenizer,
                **sampling,
            )
            for row, (job, ids) in enumerate(batch):
                results[job] = self._completion(output[row, width:].tolist(), len(ids))
        return [[results[i * n + j] for j in range(n)] for i in range(len(prompts))]

    def _completion(self, generated: list[int], prompt_tokens: int) -> Completion:
        length = len(generated)
        for position, token in enumerate(generated):
            if token in self.stop_token_ids:
                # The end-of-turn token was generated, so it counts; but a row that a stop string
                # ended is padded (here with a stop token) while its batch goes on: that one does not.
                text = self.tokenizer.decode(generated[:position], skip_special_tokens=True)
                stopped_by_string = any(text.endswith(stop.strip()) for stop in STOP_STRINGS)
                length = position if stopped_by_string else position + 1
                break
        text = self.tokenizer.decode(generated[:length], skip_special_tokens=True)
        for stop in STOP_STRINGS:
            if text.endswith(stop.strip()):
                text = text[: text.rfind(stop.strip())]
        return Completion(text=text.strip(), generated_tokens=length, prompt_tokens=prompt_tokens)
