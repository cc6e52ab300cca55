"""WebShop's products and goals, read from WebShop's own files as upstream reads them.

The products come in one of two published forms, which give the same catalogue:

- upstream's product file (`items_shuffle_1000.json`, or the full `items_shuffle.json`) with the human
  instructions (`items_human_ins.json`), parsed as upstream's `load_products` does (dedupe by ASIN,
  prices from `$a` or `$a$b`, option values lower-cased with `/` as ` | `);
- for the 1000 products, the input of upstream's own search index (`documents_1k.jsonl`, which its
  `convert_product_file_format.py` writes): one line per product, holding the product after
  `load_products` (human instructions included), so it is read as it stands.

Either way the attribute file (`items_ins_v2_1000.json` / `items_ins_v2.json`) gives the synthetic
instructions. Goals are built as upstream's `get_goals` builds them: synthetic goals (one per product
instruction and combination of its options; upstream's default on the 1000 products) or human goals
(one per human instruction with attributes; what ETO and IPR use on the full catalogue). They are
fully seeded: upstream draws product prices and goal price limits before it seeds its RNG, so its
instruction texts change from run to run; here both come from `random.Random(PRICE_SEED)`. The goal
order is upstream's (`random.seed(233); shuffle`), and so are the splits: test = goals 0-499, dev =
500-1499, train = the rest.

The product file is streamed (ijson), keeping only what pages, search and reward use, so the full
catalogue loads without holding the raw JSON in memory.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import ijson

from rro.envs.base import Task
from rro.fetch import OneOf, RemoteFile, require_any, require_cached

CatalogSize = Literal["1000", "full"]
GoalSource = Literal["synthetic", "human"]
ENV_NAMES: dict[str, CatalogSize] = {"webshop": "1000", "webshop-full": "full"}
# Upstream's goals for each catalogue when none are asked for: its environment's default (synthetic)
# on the 1000 products; human goals on the full one, the setting ETO, IPR and RRO report.
DEFAULT_GOALS: dict[CatalogSize, GoalSource] = {"1000": "synthetic", "full": "human"}

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

# The 1000 products as upstream's search engine reads them (`search_engine/resources_1k/documents.jsonl`),
# committed byte for byte in public WebShop forks: pinned by size, SHA-256 and git blob id. (The
# forks' addresses were not reachable where this was written; whatever they serve, the pins decide.)
_FORKS = (
    "https://raw.githubusercontent.com/WillDreamer/webshop-minimal/HEAD/webshop_minimal/search_engine",
    "https://raw.githubusercontent.com/WujiangXu/EPO/HEAD/agent_system/environments/env_package/webshop/webshop/search_engine",
)
DOCUMENT_FILES = {
    "1000": RemoteFile(
        name="documents_1k.jsonl", mirror_subdir="webshop", dataset="webshop", size=5_522_996,
        sha256="24fb9257c435accee9cc82e570dc8ec76a218d3b188222a84fdeb7fc5937d00e",
        git_blob="c16875ecd12c2bd108b1b558738b27fa06fac095",
        urls=tuple(f"{fork}/resources_1k/documents.jsonl" for fork in _FORKS)),
}


def product_sources(size: CatalogSize) -> OneOf:
    """Where the products can come from, in order of preference: upstream's search documents (1000
    products only), or its product file with the human instructions."""
    products = (PRODUCT_FILES[size], HUMAN_INSTRUCTIONS_FILE)
    return OneOf(((DOCUMENT_FILES[size],), products) if size in DOCUMENT_FILES else (products,))


def data_files(size: CatalogSize) -> tuple[RemoteFile | OneOf, ...]:
    """What `rro data fetch` gets: the products (in one of their forms) and the attribute file."""
    return product_sources(size), ATTRIBUTE_FILES[size]


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


@dataclass
class Annotations:
    attributes: dict[str, list[str]]  # ASIN -> annotated attributes
    instructions: dict[str, tuple[str, list[str]]]  # ASIN -> (synthetic instruction, its attributes)


def read_annotations(path: Path) -> Annotations:
    """The attribute file `items_ins_v2*.json` (ASIN -> {"attributes": [...], "instruction": ...,
    "instruction_attributes": [...]}).

    An entry without "attributes" is left out (its product gets upstream's `DUMMY_ATTR`), and so is an
    instruction without attributes (upstream asserts there is none); an entry that is not an object,
    or whose attributes are not a list of strings, is refused by ASIN.
    """
    annotations = _read_json(path, "attribute annotations")
    if not isinstance(annotations, dict):
        raise ValueError(f"{path} (attribute annotations) should map ASINs to annotations, not be a {type(annotations).__name__}")
    attributes, instructions = {}, {}
    for asin, annotation in annotations.items():
        if not isinstance(annotation, dict):
            raise ValueError(f"{path}: the annotation of {asin} is not an object")
        for key in ("attributes", "instruction_attributes"):
            values = annotation.get(key, [])
            if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
                raise ValueError(f"{path}: the {key} of {asin} are not a list of strings")
        if "attributes" in annotation:
            attributes[asin] = annotation["attributes"]
        if annotation.get("instruction") and annotation.get("instruction_attributes"):
            instructions[asin] = (annotation["instruction"], annotation["instruction_attributes"])
    return Annotations(attributes, instructions)


def read_attribute_annotations(path: Path) -> dict[str, list[str]]:
    """ASIN -> annotated attributes, from `items_ins_v2*.json`."""
    return read_annotations(path).attributes


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


def product_from_document(document: dict) -> Product:
    """A line of `documents_1k.jsonl`: its "product" is already what upstream's `load_products` made."""
    product = document["product"]
    return Product(
        asin=product["asin"],
        title=product["Title"],
        description=product["Description"] or "",
        bullet_points=[b or "" for b in product["BulletPoints"]],
        price_tag=product["Price"],
        pricing=[float(price) for price in product["pricing"]],
        options=product["options"],
        attributes=product["Attributes"],
        category=product["category"],
        query=product["query"],
        product_category=product["product_category"],
        instructions=product.get("instructions"),
    )


@dataclass
class Catalog:
    size: CatalogSize
    products: dict[str, Product]  # by ASIN, in file order
    prices: dict[str, float]  # the price a product sells at (one draw within its range)
    instructions: dict[str, tuple[str, list[str]]]  # the synthetic instructions, by ASIN
    source: str  # the product file read, as "name sha256" (names the search index cache)
    # the price RNG's state after the product prices: each goal source continues from it, as
    # upstream's one run (with either source) does
    price_rng_state: tuple = ()
    _goals: dict[str, list[dict]] = field(default_factory=dict, repr=False)

    def goals(self, source: GoalSource | None = None) -> list[dict]:
        """The goals of `source` (default: upstream's for this catalogue), in upstream's order: the
        index is the task id. Built on first use."""
        source = source or DEFAULT_GOALS[self.size]
        if source not in self._goals:
            rng = random.Random()
            rng.setstate(self.price_rng_state)
            build = synthetic_goals if source == "synthetic" else human_goals
            goals = build(self, rng)
            random.Random(SHUFFLE_SEED).shuffle(goals)
            self._goals[source] = goals
        return self._goals[source]


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
    """The catalogue from upstream's product file, attribute file and human instructions."""
    annotations = read_annotations(attributes_path)
    human = _read_json(human_path, "human instructions")
    products: dict[str, Product] = {}
    for raw in _stream_products(products_path):
        asin = raw.get("asin")
        if not asin or asin == "nan" or len(asin) > 10 or asin in products:
            continue
        try:
            products[asin] = parse_product(raw, annotations.attributes, human)
        except KeyError as err:
            raise ValueError(f"{products_path}: product {asin} has no field {err}") from None
    return _priced(size, products, annotations, products_path)


def load_documents_catalog(documents_path: Path, attributes_path: Path, size: CatalogSize) -> Catalog:
    """The catalogue from upstream's search documents (`documents_1k.jsonl`) and attribute file."""
    products: dict[str, Product] = {}
    with open(documents_path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                product = product_from_document(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{documents_path}, line {number}: not an upstream search document ({err!r})") from None
            products.setdefault(product.asin, product)
    return _priced(size, products, read_annotations(attributes_path), documents_path)


def _priced(size: CatalogSize, products: dict[str, Product], annotations: Annotations, path: Path) -> Catalog:
    rng = random.Random(PRICE_SEED)
    prices = {asin: _draw_price(p.pricing, rng) for asin, p in products.items()}
    instructions = {asin: annotations.instructions[asin] for asin in products if asin in annotations.instructions}
    return Catalog(size, products, prices, instructions, source=path.name, price_rng_state=rng.getstate())


def _draw_price(pricing: list[float], rng: random.Random) -> float:
    return pricing[0] if len(pricing) == 1 else rng.uniform(*pricing[:2])


def _price_limit(price: float, rng: random.Random) -> tuple[float, str]:
    """Upstream's goal price limit: the larger of two of the four next multiples of 10 above the price."""
    price_range = [p for p in PRICE_RANGE if p > price][:4]
    if len(price_range) >= 2:
        _, price_upper = sorted(rng.sample(price_range, 2))
        return price_upper, f", and price lower than {price_upper:.2f} dollars"
    return 1000000, ""


def synthetic_goals(catalog: Catalog, rng: random.Random) -> list[dict]:
    """Upstream's `get_synthetic_goals`: for each product with a synthetic instruction, one goal per
    combination of its option values ("... with color: blue, and size: large"), one price limit per
    product. `goal_options` maps option name -> value."""
    goals, attribute_counts = [], {}
    for product in catalog.products.values():
        if product.asin not in catalog.instructions:
            continue
        instruction, attributes = catalog.instructions[product.asin]
        price_upper, price_text = _price_limit(catalog.prices[product.asin], rng)
        names = sorted(product.options)
        for combination in itertools.product(*(product.options[name] for name in names)):
            goal_options = dict(zip(names, combination))
            option_text = ", and ".join(f"{name}: {value}" for name, value in goal_options.items())
            goals.append(_goal(product, f"{instruction}{' with ' + option_text if option_text else ''}{price_text}",
                               attributes, price_upper, goal_options))
            for attribute in attributes:
                attribute_counts[attribute] = attribute_counts.get(attribute, 0) + 1
    for goal in goals:  # upstream's sampling weight (rare attributes weigh more); kept for reference
        goal["weight"] = sum(1.0 / attribute_counts[a] for a in goal["attributes"]) / len(goal["attributes"])
    return goals


def _goal(product: Product, instruction_text: str, attributes: list[str], price_upper: float, goal_options) -> dict:
    """One goal as upstream's goal dicts hold it: the product it is for, and what the buyer asks."""
    return {
        "asin": product.asin,
        "category": product.category,
        "query": product.query,
        "name": product.title,
        "product_category": product.product_category,
        "instruction_text": instruction_text,
        "attributes": attributes,
        "price_upper": price_upper,
        "goal_options": goal_options,
    }


def human_goals(catalog: Catalog, rng: random.Random) -> list[dict]:
    """Upstream's `get_human_goals`: one goal per human instruction with at least one attribute.
    `goal_options` lists the wanted option values."""
    goals = []
    for product in catalog.products.values():
        for instruction in product.instructions or ():
            attributes = instruction["instruction_attributes"]
            if not attributes:
                continue
            price_upper, price_text = _price_limit(catalog.prices[product.asin], rng)
            goals.append(_goal(product, instruction["instruction"].strip(".") + price_text, attributes, price_upper,
                               instruction["instruction_options"]))
    return goals


@lru_cache(maxsize=2)
def load_catalog(size: CatalogSize = "1000") -> Catalog:
    """The catalogue from the fetched files (`rro data fetch webshop`), loaded once per process: from
    the search documents where they were fetched, else from upstream's product file."""
    sources = require_any(product_sources(size))
    attributes = require_cached(ATTRIBUTE_FILES[size])
    if len(sources) == 1:
        catalog = load_documents_catalog(sources[0], attributes, size)
        remote = DOCUMENT_FILES[size]
    else:
        catalog = load_catalog_files(sources[0], attributes, sources[1], size)
        remote = PRODUCT_FILES[size]
    catalog.source = f"{remote.name} {remote.sha256 or _stamp(sources[0])}"
    return catalog


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def goal_task(env: str, index: int, goal: dict) -> Task:
    return Task(env=env, id=str(index), instruction=goal["instruction_text"], fields=dict(goal))


def task_loader(env: str):
    size = ENV_NAMES[env]

    def load_tasks(split: str = "test", goals: GoalSource | None = None) -> list[Task]:
        """Goals of a split, in upstream's order (test = 0-499, dev = 500-1499, train = the rest)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} for {env}; choose one of {', '.join(SPLITS)}")
        start, stop = SPLITS[split]
        goals = load_catalog(size).goals(goals)
        return [goal_task(env, i, goals[i]) for i in range(start, len(goals) if stop is None else min(stop, len(goals)))]

    return load_tasks
