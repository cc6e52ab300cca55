"""WebShop (Yao et al. 2022): shop for a product described by a human instruction, on WebShop's own
data files. `webshop` uses the 1000-product catalogue (upstream's default), `webshop-full` the full one.

The environments' declarations are `rro.envs.webshop.spec.SPECS`. The names below load on first
use, so that importing the declarations stays cheap.
"""

from importlib import import_module

_LAZY = {"WebShopEnv": "env", "expert": "expert"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"rro.envs.webshop.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
