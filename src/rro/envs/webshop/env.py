"""The WebShop environment (Yao et al. 2022) in its text mode: find and buy the product an
instruction asks for.

Actions are `search[keywords]` and `click[value]`, parsed as upstream parses them. A search runs
from any page; a click on something the page does not offer does nothing (the same page comes back,
as upstream), and so does `click[search]`. The episode ends with `click[Buy Now]` on a product page,
scored by upstream's reward; every other step scores 0.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rro.envs.base import StepResult, Task
from rro.envs.webshop import pages
from rro.envs.webshop.catalog import ENV_NAMES, CatalogSize, load_catalog
from rro.envs.webshop.reward import webshop_reward
from rro.envs.webshop.search import SearchEngine

_ACTION = re.compile(r"(.+)\[(.+)\]")  # upstream's parse_action (re.match: anchored at the start)


def parse_action(action: str) -> tuple[str, str | None]:
    match = _ACTION.match(action)
    return (action, None) if match is None else (match.group(1), match.group(2))


@lru_cache(maxsize=2)
def search_engine(size: CatalogSize) -> SearchEngine:
    return SearchEngine(load_catalog(size))


class WebShopEnv:
    def __init__(self, name: str = "webshop"):
        self.name = name
        self.size = ENV_NAMES[name]
        self.catalog = load_catalog(self.size)
        self.engine = search_engine(self.size)
        self.task: Task | None = None
        self.page: pages.Page | None = None

    def reset(self, task: Task) -> str:
        self.task = task
        self.keywords: str | None = None
        self.page_number = 1
        self.asin: str | None = None
        self.options: dict[str, str] = {}
        self.done = False
        self.page = pages.search_page(task.instruction)
        return self.page.text

    def available_actions(self) -> dict:
        assert self.page is not None
        return {"has_search_bar": self.page.kind == "search", "clickables": list(self.page.clickables)}

    def step(self, action: str) -> StepResult:
        if self.task is None or self.page is None:
            raise RuntimeError("call reset(task) before step(action)")
        if self.done:
            return StepResult("The episode has ended.", 0.0, True, {"error": "episode already ended"})
        name, argument = parse_action(action)
        argument = argument.lower() if argument is not None else None
        reward, info = 0.0, {}
        if name == "search" and argument:
            self._results(argument, 1)
        elif name == "click" and argument in self.page.clickables and argument != "search":
            reward, info = self._click(argument)
        else:
            info["error"] = "nothing happened: not a search or a click on something this page offers"
        info["available_actions"] = self.available_actions()
        return StepResult(self.page.text, reward, self.done, info)

    def _results(self, keywords: str, page_number: int) -> None:
        self.keywords, self.page_number = keywords, page_number
        self.asin, self.options = None, {}
        found = _cached_search(self.engine, keywords)
        window = found[(page_number - 1) * pages.PRODUCT_WINDOW: page_number * pages.PRODUCT_WINDOW]
        products = [self.catalog.products[asin] for asin in window]
        self.page = pages.results_page(self.task.instruction, products, page_number, len(found))

    def _item(self) -> None:
        self.page = pages.item_page(self.task.instruction, self.catalog.products[self.asin])

    def _click(self, name: str) -> tuple[float, dict]:
        kind, target = self.page.clickables[name]
        here = self.page.kind
        if name == pages.BUY_NOW.lower():
            product = self.catalog.products[self.asin]
            reward, info = webshop_reward(product, self.task.fields, self.catalog.prices[self.asin], self.options)
            self.done = True
            self.page = pages.done_page(reward)
            return reward, {"purchased": self.asin, "options": dict(self.options), **info}
        if name == pages.BACK_TO_SEARCH.lower():
            self.reset(self.task)
        elif name == pages.NEXT_PAGE.lower() and here == "results":
            self._results(self.keywords, self.page_number + 1)
        elif name == pages.PREV_PAGE.lower() and here == "results":
            self._results(self.keywords, self.page_number - 1)
        elif name == pages.PREV_PAGE.lower() and here == "sub":
            self._item()
        elif name == pages.PREV_PAGE.lower() and here == "item":
            self._results(self.keywords, self.page_number)
        elif kind == "button" and target in pages.SUB_PAGES:
            self.page = pages.sub_page(self.task.instruction, self.catalog.products[self.asin], target)
        elif kind == "product":
            self.asin = target
            self._item()
        elif kind == "option":
            self.options[target] = name
            self._item()
        return 0.0, {}

    def close(self) -> None:
        pass


@lru_cache(maxsize=4096)
def _cached_search(engine: SearchEngine, keywords: str) -> tuple[str, ...]:
    # Rollouts repeat the same searches many times: the engine is deterministic, so ask it once.
    return tuple(engine.search(keywords))
