"""What rro needs to know about WebShop: the agent's instruction and worked example, how an agent
turn's action is read, and where tasks, environments and the oracle come from. Two environments
share it: `webshop` (the 1000-product catalogue, upstream's default) and `webshop-full`.

Kept light (the catalogue, search index and spaCy load on first use).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rro.envs.base import EnvSpec, Example, ParsedAction

ENV_NAMES = ("webshop", "webshop-full")
BUY_ACTION = "click[buy now]"
SPLITS = ("test", "dev", "train", "all")  # test = goals 0-499, dev = 500-1499, train = the rest

INSTRUCTION = (
    "You are a shopping agent in a web shop: find and buy the product that the instruction "
    "describes. Pages are shown as text, with [SEP] between their elements. Work step by step: "
    "each turn, write one line 'Thought: ' with your reasoning, then 'Action: ' followed by "
    "either search[keywords] to search the shop, or click[value] to click a button, a product ID "
    "or an option shown on the page. Select the options the instruction asks for before you "
    "click[Buy Now]: buying ends the episode and the purchase is scored."
)
FORMAT_HELP = "Reply with 'Thought: <your reasoning>' and then 'Action: search[keywords]' or 'Action: click[value]'."

_GOAL = "i need a blue cotton t-shirt in size large, and price lower than 30.00 dollars"
_ITEM = (f"Instruction: [SEP] {_GOAL} [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] blue [SEP] "
         "black [SEP] size [SEP] medium [SEP] large [SEP] Men's Cotton Crew T-Shirt [SEP] Price: $19.99 [SEP] "
         "Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
EXAMPLE = Example(
    observation=f"WebShop [SEP] Instruction: [SEP] {_GOAL} [SEP] Search",
    steps=(
        ("Thought: I should search for a blue cotton t-shirt.\nAction: search[blue cotton t-shirt]",
         f"Instruction: [SEP] {_GOAL} [SEP] Back to Search [SEP] Page 1 (Total results: 2) [SEP] Next > [SEP] "
         "B0EXAMPLE1 [SEP] Men's Cotton Crew T-Shirt [SEP] $19.99 [SEP] B0EXAMPLE2 [SEP] Women's Wool Sweater [SEP] $45.0"),
        ("Thought: B0EXAMPLE1 is a cotton t-shirt below 30 dollars.\nAction: click[B0EXAMPLE1]", _ITEM),
        ("Thought: The instruction asks for blue.\nAction: click[blue]", _ITEM),
        ("Thought: And for size large.\nAction: click[large]", _ITEM),
        ("Thought: The t-shirt is blue, cotton, large and costs less than 30 dollars, so I buy it.\n"
         "Action: click[Buy Now]", None),
    ),
)

class WebShopOptions(BaseModel):
    """WebShop's settings: which goals are the tasks."""

    model_config = ConfigDict(extra="forbid")

    goals: Literal["synthetic", "human"] | None = Field(
        default=None,
        description="Goal source: synthetic (from the attribute file's instructions, one goal per option "
                    "combination) or human (WebShop's human instructions). Default: upstream's for the "
                    "catalogue, synthetic on webshop, human on webshop-full.",
        json_schema_extra={"run_wide": True})  # train and test goals must come from one source


_ACTION = re.compile(r"(search|click)\[(.*)\]", re.I)  # to the last ] of the line


def parse_action(text: str) -> ParsedAction:
    """`search[keywords]` or `click[value]`, on the first line."""
    line, _, after = text.strip().partition("\n")
    match = _ACTION.match(line)
    if match is None:
        return ParsedAction(None, "the action must be search[keywords] or click[value]")
    if not match.group(2).strip():
        return ParsedAction(None, f"{match.group(1).lower()}[] is empty")
    return ParsedAction(f"{match.group(1).lower()}[{match.group(2).strip()}]", None, (line[match.end():] + after).strip())


def make(name: str):
    from rro.envs.webshop.env import WebShopEnv

    return WebShopEnv(name)


def load_tasks(name: str, split: str = "test", goals: str | None = None):
    from rro.envs.webshop.catalog import task_loader

    return task_loader(name)(split, goals)


def expert(task):
    from rro.envs.webshop.expert import expert

    return expert(task)


def split_table(name: str):
    """Goals and distinct goal products of every split, for each goal source (upstream's default marked)."""
    from rro.envs.webshop.catalog import DEFAULT_GOALS, ENV_NAMES

    rows = []
    for source in ("synthetic", "human"):
        label = source + (" (default)" if DEFAULT_GOALS[ENV_NAMES[name]] == source else "")
        for split in SPLITS:
            tasks = load_tasks(name, split, source)
            rows.append([label, split, str(len(tasks)), str(len({task.fields["asin"] for task in tasks}))])
    return ["goal source", "split", "goals", "products"], rows


def data_files(name: str):
    from rro.envs.webshop.catalog import ENV_NAMES, data_files

    return data_files(ENV_NAMES[name])


SPECS = [
    EnvSpec(
        name=name,
        make=partial(make, name),
        load_tasks=partial(load_tasks, name),
        expert=expert,
        terminal_actions=frozenset({BUY_ACTION}),
        instruction=INSTRUCTION,
        format_help=FORMAT_HELP,
        parse_action=parse_action,
        example=EXAMPLE,
        reward_range=(0.0, 1.0),
        options=WebShopOptions,
        task_options=("goals",),
        splits=SPLITS,
        split_table=partial(split_table, name),
        data_files=partial(data_files, name),
        description=("WebShop, shopping by search and clicks, "
                     + ("1000-product catalogue" if name == "webshop" else "full 1.18M-product catalogue") + "."),
        data_license="mit",
        data_license_note="WebShop (Yao et al. 2022): products, attributes and human instructions, MIT licence.",
    )
    for name in ENV_NAMES
]
