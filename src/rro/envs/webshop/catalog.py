"""WebShop's products and goals, read from WebShop's own JSON files as upstream reads them.

Three files: the products (`items_shuffle_1000.json`, or the full `items_shuffle.json`), their
attribute annotations (`items_ins_v2_1000.json` / `items_ins_v2.json`) and the human instructions
(`items_human_ins.json`). Products are parsed as upstream's `load_products` does (dedupe by ASIN,
prices from `$a` or `$a$b`, option values lower-cased with `/` as ` | `). Goals are built as its
`get_human_goals` does, but fully seeded: upstream draws product prices and goal price limits before
it seeds its RNG, so its instruction texts change from run to run; here both come from
`random.Random(PRICE_SEED)`. The goal order is upstream's (`random.seed(233); shuffle`), and so are
the splits: test = goals 0-499, dev = 500-1499, train = the rest.

The product file is streamed (ijson), keeping only what pages, search and reward use, so the full
catalogue loads without holding the raw JSON in memory.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import ijson

from rro.envs.base import Task
from rro.fetch import RemoteFile, require_cached

CatalogSize = Literal["1000", "full"]
ENV_NAMES: dict[str, CatalogSize] = {"webshop": "1000", "webshop-full": "full"}

# Upstream's setup.sh downloads these with gdown; the usercontent address skips Drive's
# "cannot scan this file for viruses" page for the large files. The 1000-product set's files and the
# human instructions are pinned to their published sizes and SHA-256; the full catalogue's files
# have no published checksum and are only checked to be JSON.
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="


def _drive_file(name: str, drive_id: str, dataset: str = "webshop", size: int | None = None,
                sha256: str | None = None) -> RemoteFile:
    return RemoteFile(name=name, sha256=sha256, size=size, mirror_subdir="webshop", urls=(_DRIVE + drive_id,),
                      dataset=dataset)


PRODUCT_FILES = {
    "1000": _drive_file("items_shuffle_1000.json", "1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib", size=4_467_013,
                        sha256="30a4765c3a327af72d9a9a95a6b2486d516f0fa1d3ecd83681901ce82a21b269"),
    "full": _drive_file("items_shuffle.json", "1A2whVgOO0euk5O13n2iYDM0bQRkkRduB", "webshop-full"),
}
ATTRIBUTE_FILES = {
    "1000": _drive_file("items_ins_v2_1000.json", "1IduG0xl544V_A_jv3tHXC0kyFi7PnyBu", size=147_099,
                        sha256="f88a36314a397b53b3d9c3fa5878e5f7b26d35019a51ec83fbedeca61a948f6f"),
    "full": _drive_file("items_ins_v2.json", "1s2j6NgHljiZzQNL3veZaAiyW_qDEgBNi", "webshop-full"),
}
HUMAN_INSTRUCTIONS_FILE = _drive_file("items_human_ins.json", "14Kb5SPBk_jfdLZ_CDBNitW98QLDlKR5O", size=5_137_548,
                                      sha256="cf78667548a71786e1d9049c24b802e48e1084ad4bb021cae56ce1f6d96954a3")


def data_files(size: CatalogSize) -> tuple[RemoteFile, ...]:
    return PRODUCT_FILES[size], ATTRIBUTE_FILES[size], HUMAN_INSTRUCTIONS_FILE


PRICE_SEED = 233  # prices of products sold at a range, and the goals' price limits
SHUFFLE_SEED = 233  # upstream's goal order
PRICE_RANGE = [10.0 * i for i in range(1, 100)]
SPLITS = {"test": (0, 500), "dev": (500, 1500), "train": (1500, None), "all": (0, None)}


@dataclass(slots=True)
class Product:
    asin: str
    title: str  # upstream's `Title` (the raw `name`)
    description: str
    bullet_points: list[str]
    price_tag: str  # what the pages show: "$12.99" or "$10.0 to $15.0"
    pricing: list[float]
    options: dict[str, list[str]]  # option name (lower case) -> values
    attributes: list[str]  # annotated attributes, ["DUMMY_ATTR"] when none
    category: str
    query: str
    product_category: str
    instructions: list[dict] | None = None  # human instructions written for this product
    rating: str = "N.A."  # upstream reads ratings from a reviews file that its setup never downloads
    reviews: tuple = ()


def _parse_pricing(pricing: str | None) -> tuple[list[float], str]:
    if not pricing:
        return [100.0], "$100.0"
    prices = [float(Decimal(re.sub(r"[^\d.]", "", part))) for part in pricing.split("$")[1:]]
    if len(prices) == 1:
        return prices, f"${prices[0]}"
    return prices[:2], f"${prices[0]} to ${prices[1]}"


def _parse_options(customization: dict | None) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for name, contents in (customization or {}).items():
        if contents is None:
            continue
        options[name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
    return options


def read_attribute_annotations(path: Path) -> dict[str, list[str]]:
    """ASIN -> annotated attributes, from `items_ins_v2*.json` (ASIN -> {"attributes": [...], ...}).

    An entry without "attributes" is left out (its product gets upstream's `DUMMY_ATTR`); an entry
    that is not an object, or whose attributes are not a list of strings, is refused by ASIN.
    """
    annotations = _read_json(path, "attribute annotations")
    if not isinstance(annotations, dict):
        raise ValueError(f"{path} (attribute annotations) should map ASINs to annotations, not be a {type(annotations).__name__}")
    attributes = {}
    for asin, annotation in annotations.items():
        if not isinstance(annotation, dict):
            raise ValueError(f"{path}: the annotation of {asin} is not an object")
        if "attributes" not in annotation:
            continue
        values = annotation["attributes"]
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise ValueError(f"{path}: the attributes of {asin} are not a list of strings")
        attributes[asin] = values
    return attributes


def parse_product(raw: dict, attributes: dict[str, list[str]], human: dict) -> Product:
    asin = raw["asin"]
    bullets = raw.get("small_description")
    bullets = bullets if isinstance(bullets, list) else [bullets or ""]
    pricing, price_tag = _parse_pricing(raw.get("pricing"))
    return Product(
        asin=asin,
        title=raw["name"],
        description=raw.get("full_description") or "",
        bullet_points=[b or "" for b in bullets],
        price_tag=price_tag,
        pricing=pricing,
        options=_parse_options(raw.get("customization_options")),
        attributes=attributes.get(asin, ["DUMMY_ATTR"]),
        category=raw["category"],
        query=raw["query"].lower().strip(),
        product_category=raw["product_category"],
        instructions=human.get(asin),
    )


@dataclass
class Catalog:
    size: CatalogSize
    products: dict[str, Product]  # by ASIN, in file order
    prices: dict[str, float]  # the price a product sells at (one draw within its range)
    goals: list[dict]  # in upstream's order: the index is the task id


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} ({what}) is not valid JSON: {err}") from None


def _stream_products(path: Path):
    with open(path, "rb") as f:
        try:
            yield from ijson.items(f, "item", use_float=True)
        except ijson.JSONError as err:
            raise ValueError(f"{path} (WebShop products) is not a valid JSON list: {err}") from None


def load_catalog_files(products_path: Path, attributes_path: Path, human_path: Path, size: CatalogSize) -> Catalog:
    attributes = read_attribute_annotations(attributes_path)
    human = _read_json(human_path, "human instructions")
    products: dict[str, Product] = {}
    for raw in _stream_products(products_path):
        asin = raw.get("asin")
        if not asin or asin == "nan" or len(asin) > 10 or asin in products:
            continue
        try:
            products[asin] = parse_product(raw, attributes, human)
        except KeyError as err:
            raise ValueError(f"{products_path}: product {asin} has no field {err}") from None
    rng = random.Random(PRICE_SEED)
    prices = {asin: _draw_price(p.pricing, rng) for asin, p in products.items()}
    goals = human_goals(products, prices, rng)
    random.Random(SHUFFLE_SEED).shuffle(goals)
    return Catalog(size, products, prices, goals)


def _draw_price(pricing: list[float], rng: random.Random) -> float:
    return pricing[0] if len(pricing) == 1 else rng.uniform(*pricing[:2])


def human_goals(products: dict[str, Product], prices: dict[str, float], rng: random.Random) -> list[dict]:
    """Upstream's `get_human_goals`: one goal per human instruction with at least one attribute."""
    goals = []
    for product in products.values():
        for instruction in product.instructions or ():
            attributes = instruction["instruction_attributes"]
            if not attributes:
                continue
            price_range = [p for p in PRICE_RANGE if p > prices[product.asin]][:4]
            if len(price_range) >= 2:
                _, price_upper = sorted(rng.sample(price_range, 2))
                price_text = f", and price lower than {price_upper:.2f} dollars"
            else:
                price_upper, price_text = 1000000, ""
            goals.append({
                "asin": product.asin,
                "category": product.category,
                "query": product.query,
                "name": product.title,
                "product_category": product.product_category,
                "instruction_text": instruction["instruction"].strip(".") + price_text,
                "attributes": attributes,
                "price_upper": price_upper,
                "goal_options": instruction["instruction_options"],
            })
    return goals


@lru_cache(maxsize=2)
def load_catalog(size: CatalogSize = "1000") -> Catalog:
    """The catalogue from the fetched files (`rro data fetch webshop`), loaded once per process."""
    paths = [require_cached(remote) for remote in data_files(size)]
    return load_catalog_files(*paths, size=size)


def goal_task(env: str, index: int, goal: dict) -> Task:
    return Task(env=env, id=str(index), instruction=goal["instruction_text"], fields=dict(goal))


def task_loader(env: str):
    size = ENV_NAMES[env]

    def load_tasks(split: str = "test") -> list[Task]:
        """Goals of a split, in upstream's order (test = 0-499, dev = 500-1499, train = the rest)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} for {env}; choose one of {', '.join(SPLITS)}")
        start, stop = SPLITS[split]
        goals = load_catalog(size).goals
        return [goal_task(env, i, goals[i]) for i in range(start, len(goals) if stop is None else min(stop, len(goals)))]

    return load_tasks
