"""rro: train LLM agents with Reward Rising Optimization."""

__version__ = "0.1.0"
