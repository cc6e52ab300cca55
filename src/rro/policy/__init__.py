"""Who writes the next turn: a model behind the `Policy` protocol."""

from rro.policy.base import Completion, Policy, PolicyError

__all__ = ["Completion", "Policy", "PolicyError", "load_policy", "release_engines"]


def load_policy(model: str, backend: str = "hf", **options) -> Policy:
    """A policy for `model` (a named model, a local path or a transformers id) on `backend`."""
    if backend == "hf":
        from rro.policy.hf import HFPolicy

        return HFPolicy(model, **options)
    if backend == "openai":
        try:
            from rro.policy.openai import OpenAIPolicy
        except ImportError:
            raise PolicyError("the openai backend needs the openai package: pip install 'rro[openai]'") from None

        return OpenAIPolicy(model, **options)
    if backend == "vllm":
        from rro.policy.vllm import VLLMPolicy

        return VLLMPolicy(model, **options)
    raise ValueError(f"unknown policy backend {backend!r}; choose hf, openai or vllm")


def release_engines() -> None:
    """Free the memory an in-process engine holds (before training, or before another model)."""
    import sys

    if "rro.policy.vllm" in sys.modules:  # never import vLLM just to find nothing running
        sys.modules["rro.policy.vllm"].release_engine()
