"""Who writes the next turn: a model behind the `Policy` protocol, on one of the backends below."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from rro.policy.base import Completion, Policy, PolicyError

__all__ = ["BACKENDS", "Backend", "Completion", "Policy", "PolicyError", "load_policy", "release_engines"]


@dataclass(frozen=True)
class Backend:
    """A policy backend: where its class lives (imported only when used) and which of the policy
    settings (rro.config.PolicyConfig) it takes."""

    cls: str  # module:class
    settings: tuple[str, ...]
    required: tuple[str, ...] = ()  # settings it cannot run without
    extra: str | None = None  # the optional dependency that brings its package
    weights_here: bool = False  # loads the model's weights in this process from a local folder (fetch them first)


# The one list of backends: the `policy_backend` setting's choices, and what each one is given.
BACKENDS: dict[str, Backend] = {
    "hf": Backend("rro.policy.hf:HFPolicy", ("dtype", "device", "max_batch_size"), weights_here=True),
    "openai": Backend("rro.policy.openai:OpenAIPolicy", ("base_url",), required=("base_url",), extra="openai"),
    "vllm": Backend("rro.policy.vllm:VLLMPolicy", ("dtype", "gpu_memory_utilization", "max_model_len", "enforce_eager",
                                                   "seed", "kv_block_size")),
}


def load_policy(model: str, backend: str = "hf", **options) -> Policy:
    """A policy for `model` (a named model, a local path or a transformers id) on `backend`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown policy backend {backend!r}; choose {', '.join(BACKENDS)}")
    module, name = BACKENDS[backend].cls.split(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError:
        if BACKENDS[backend].extra is None:
            raise
        raise PolicyError(f"the {backend} backend needs the {BACKENDS[backend].extra} package: "
                          f"pip install 'rro[{BACKENDS[backend].extra}]'") from None
    return cls(model, **options)


def release_engines() -> None:
    """Free the memory an in-process engine holds (before training, or before another model)."""
    import sys

    if "rro.policy.vllm" in sys.modules:  # never import vLLM just to find nothing running
        sys.modules["rro.policy.vllm"].release_engine()
