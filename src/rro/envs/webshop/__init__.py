"""WebShop (Yao et al. 2022): shop for a product described by a human instruction, on WebShop's own
data files. `webshop` uses the 1000-product catalogue (upstream's default), `webshop-full` the full one."""

from functools import partial

from rro.envs.base import EnvSpec, register
from rro.envs.webshop.catalog import ENV_NAMES, task_loader
from rro.envs.webshop.env import BUY_ACTION, WebShopEnv
from rro.envs.webshop.expert import expert

for _name in ENV_NAMES:
    register(
        EnvSpec(
            name=_name,
            make=partial(WebShopEnv, _name),
            load_tasks=task_loader(_name),
            expert=expert,
            terminal_actions=frozenset({BUY_ACTION}),
            reward_range=(0.0, 1.0),
        )
    )

__all__ = ["WebShopEnv", "expert"]
