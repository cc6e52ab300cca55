"""Exploration strategies that turn a policy's behaviour into preference pairs and cost records:
`rising` (RRO), `fixed` (best of K), `ipr` (along the expert), `outcome` (whole trajectories)."""

from rro.explore.run import explore, summarize_steps

__all__ = ["explore", "summarize_steps"]
