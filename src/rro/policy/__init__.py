"""Who writes the next turn: a model behind the `Policy` protocol."""

from rro.policy.base import Completion, Policy, PolicyError

__all__ = ["Completion", "Policy", "PolicyError", "load_policy"]


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
    raise ValueError(f"unknown policy backend {backend!r}; choose hf or openai")
