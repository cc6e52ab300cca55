"""An oracle shopper for expert trajectories: it knows the goal, not the search engine.

It searches with the instruction's words (without the price clause), then reads the results it is
shown: it opens the goal product when the results hold it, else the result that would score best
(it reads the catalogue as a clerk who knows every product would), selects the goal's options and
buys. Search can miss the goal product, so not every expert scores 1.0.
"""

from __future__ import annotations

import re
from collections.abc import Generator

from rro.envs.base import Task
from rro.envs.webshop.catalog import ENV_NAMES, Product, load_catalog
from rro.envs.webshop.reward import fuzzy_score, goal_option_values, normalize_color, webshop_reward

_PRICE_CLAUSE = re.compile(r",? and price lower than [\d.]+ dollars$")
_RESULT_PAGE = re.compile(r"Page (\d+) \(Total results: (\d+)\)")
RESULT_PAGES_READ = 5  # the 50 results upstream's search returns


def search_keywords(instruction: str) -> str:
    return _PRICE_CLAUSE.sub("", instruction).strip()


def choose_options(product: Product, goal_options: list[str]) -> dict[str, str]:
    """For each option group, the value that best matches a goal option (exactly, else fuzzily)."""
    wanted = [value.lower() for value in goal_options]
    chosen = {}
    for name, values in product.options.items():
        exact = [v for v in values if v in wanted]
        if exact:
            chosen[name] = exact[0]
            continue
        scored = [(fuzzy_score(normalize_color(w), normalize_color(v)), v) for v in values for w in wanted]
        best = max(scored, default=(0, None))
        if best[0] > 85:
            chosen[name] = best[1]
    return chosen


def _result_asins(observation: str, catalog) -> list[str]:
    return [part for part in observation.split(" [SEP] ") if part in catalog.products]


def expert(task: Task) -> Generator[str, str, None]:
    catalog = load_catalog(ENV_NAMES[task.env])
    goal = task.fields
    goal_options = goal_option_values(goal)
    keywords = search_keywords(task.instruction)
    observation = yield f"Thought: I should search for the product the instruction describes.\nAction: search[{keywords}]"

    # Read up to five pages of results, remembering where each product was shown.
    shown: dict[str, int] = {}
    for page_number in range(1, RESULT_PAGES_READ + 1):
        for asin in _result_asins(observation, catalog):
            shown.setdefault(asin, page_number)
        match = _RESULT_PAGE.search(observation)
        if goal["asin"] in shown or match is None or page_number * 10 >= int(match.group(2)):
            break
        observation = yield "Thought: The product I want is not on this page; let me look at the next one.\nAction: click[Next >]"
    if not shown:
        return  # nothing found: the episode ends without a purchase (reward 0)

    def value(asin: str) -> float:
        product = catalog.products[asin]
        return webshop_reward(product, goal, catalog.prices[asin], choose_options(product, goal_options))[0]

    target = goal["asin"] if goal["asin"] in shown else max(shown, key=value)
    current = page_number  # the results page on screen
    while current > shown[target]:
        observation = yield "Thought: The best match was on an earlier page.\nAction: click[< Prev]"
        current -= 1
    product = catalog.products[target]
    observation = yield f"Thought: {target} matches what I am looking for.\nAction: click[{target}]"
    for name, option in choose_options(product, goal_options).items():
        observation = yield f"Thought: I need the {option} {name}.\nAction: click[{option}]"
    yield "Thought: This product has everything the instruction asks for, so I buy it.\nAction: click[Buy Now]"
