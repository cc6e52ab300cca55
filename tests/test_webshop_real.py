"""WebShop on its real 1000-product catalogue: upstream's search documents (`documents_1k.jsonl`) and
attribute file (`items_ins_v2_1000.json`) from the data mirror.

The catalogue and its goals as upstream builds them, the two published forms of the products giving
the same catalogue, refusal of wrong files, search results equal to upstream's Lucene index, the
oracle, and `rro eval`, `rro explore` and `rro run` with the tiny model. Without the mirror these
tests skip, unless RRO_REQUIRE_DATA_MIRROR=1 (CI sets it) makes them fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rro.envs.base import make, spec
from rro.envs.webshop.catalog import (
    DOCUMENT_FILES,
    load_catalog_files,
    load_documents_catalog,
)
from rro.envs.webshop.reward import COLOR_SET, normalize_color, webshop_reward
from rro.envs.webshop.search import SearchEngine, document_text
from rro.fetch import DataError, ensure_file, git_blob_of, require_cached, sha256_of

FIXTURE = Path(__file__).parent / "data" / "webshop"
DOCUMENTS = DOCUMENT_FILES["1000"]


@pytest.fixture(scope="module")
def catalog(real_webshop):
    return real_webshop


def test_the_catalogue_and_its_goals_are_upstreams(catalog):
    assert len(catalog.products) == 1000 and catalog.source.startswith(f"documents_1k.jsonl {DOCUMENTS.sha256}")
    assert len(catalog.instructions) == 415  # products with a synthetic instruction
    synthetic, human = catalog.goals("synthetic"), catalog.goals("human")
    assert catalog.goals() is synthetic  # upstream's default on the 1000 products
    assert (len(synthetic), len(human)) == (6910, 13)  # one goal per option combination; 13 human instructions
    tasks = {split: spec("webshop").load_tasks(split=split) for split in ("test", "dev", "train")}
    assert {split: len(t) for split, t in tasks.items()} == {"test": 500, "dev": 1000, "train": 5410}
    assert len(spec("webshop").load_tasks(split="test", goals="human")) == 13

    goal = synthetic[0]  # upstream's text: instruction, " with " the options, the price limit
    product = catalog.products[goal["asin"]]
    instruction, attributes = catalog.instructions[goal["asin"]]
    options = ", and ".join(f"{name}: {value}" for name, value in goal["goal_options"].items())
    assert goal["instruction_text"] == f"{instruction} with {options}, and price lower than {goal['price_upper']:.2f} dollars"
    assert goal["attributes"] == attributes and set(goal["goal_options"]) == set(product.options)
    assert catalog.prices[goal["asin"]] < goal["price_upper"]
    # every option combination of a product is a goal of its own
    combinations = 1
    for values in product.options.values():
        combinations *= len(values)
    assert sum(g["asin"] == goal["asin"] for g in synthetic) == combinations

    again = load_documents_catalog(require_cached(DOCUMENTS), require_cached(_attributes()), "1000")
    assert again.prices == catalog.prices  # seeded: a fresh load draws the same prices, limits and order
    assert [g["instruction_text"] for g in again.goals()] == [g["instruction_text"] for g in synthetic]


def _attributes():
    from rro.envs.webshop.catalog import ATTRIBUTE_FILES

    return ATTRIBUTE_FILES["1000"]


def test_documents_hold_the_text_rro_indexes(catalog):
    """Upstream's `contents` of each document is exactly what rro's search indexes for the product."""
    documents = [json.loads(line) for line in require_cached(DOCUMENTS).open()]
    assert [d["id"] for d in documents] == list(catalog.products)
    assert all(d["contents"] == document_text(catalog.products[d["id"]]) for d in documents)


def upstream_documents(products: list[dict], attributes: dict, human: dict) -> list[dict]:
    """What upstream's `convert_product_file_format.py` writes for these raw products: each product
    after `load_products` (raw keys, then Title, Description, ..., Attributes, instructions), and
    its search text."""
    import re
    from decimal import Decimal

    documents, seen = [], set()
    for raw in products:
        product = dict(raw)
        asin = product["asin"]
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        bullets = product["small_description"]
        pricing = product.get("pricing")
        if not pricing:
            prices, tag = [100.0], "$100.0"
        else:
            prices = [float(Decimal(re.sub(r"[^\d.]", "", p))) for p in pricing.split("$")[1:]]
            tag = f"${prices[0]}" if len(prices) == 1 else f"${prices[0]} to ${prices[1]}"
            prices = prices if len(prices) == 1 else prices[:2]
        options = {name.lower(): [c["value"].strip().replace("/", " | ").lower() for c in contents]
                   for name, contents in (product["customization_options"] or {}).items() if contents is not None}
        product.update(Title=product["name"], Description=product["full_description"], Reviews=[], Rating="N.A.",
                       BulletPoints=bullets if isinstance(bullets, list) else [bullets], pricing=prices, Price=tag,
                       options=options, Attributes=attributes.get(asin, {}).get("attributes", ["DUMMY_ATTR"]))
        if asin in human:
            product["instructions"] = human[asin]
        product["query"] = product["query"].lower().strip()
        option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in options.items())
        contents = " ".join([product["Title"], product["Description"] or "", product["BulletPoints"][0] or "", option_text])
        documents.append({"id": asin, "contents": contents.lower(), "product": product})
    return documents


def test_both_forms_of_the_products_give_the_same_catalogue(tmp_path):
    """The fixture's products written as upstream's search documents load as the same catalogue as
    from its product file: products, prices, goals."""
    raw = json.loads((FIXTURE / "items_shuffle_1000.json").read_text())
    attributes = json.loads((FIXTURE / "items_ins_v2_1000.json").read_text())
    human = json.loads((FIXTURE / "items_human_ins.json").read_text())
    documents = tmp_path / "documents_1k.jsonl"
    documents.write_text("".join(json.dumps(d) + "\n" for d in upstream_documents(raw, attributes, human)))

    from_products = load_catalog_files(FIXTURE / "items_shuffle_1000.json", FIXTURE / "items_ins_v2_1000.json",
                                       FIXTURE / "items_human_ins.json", "1000")
    from_documents = load_documents_catalog(documents, FIXTURE / "items_ins_v2_1000.json", "1000")
    assert len(from_products.products) == 23
    assert from_documents.products == from_products.products
    assert from_documents.prices == from_products.prices
    assert from_documents.goals("human") == from_products.goals("human") and len(from_products.goals("human")) == 16
    for asin, product in from_products.products.items():  # and upstream's search text is rro's
        line = next(json.loads(d) for d in documents.read_text().splitlines() if json.loads(d)["id"] == asin)
        assert line["contents"] == document_text(product)


def test_a_wrong_documents_file_is_refused_naming_it(catalog, tmp_path, monkeypatch):
    real = require_cached(DOCUMENTS)
    assert (real.stat().st_size, sha256_of(real), git_blob_of(real)) == (DOCUMENTS.size, DOCUMENTS.sha256, DOCUMENTS.git_blob)
    monkeypatch.setenv("RRO_HOME", str(tmp_path / "home"))
    mirror = tmp_path / "mirror" / "webshop"
    mirror.mkdir(parents=True)
    damaged = bytearray(real.read_bytes())
    damaged[100] ^= 0x01
    (mirror / DOCUMENTS.name).write_bytes(bytes(damaged))
    with pytest.raises(DataError) as refused:
        ensure_file(DOCUMENTS, mirror.parent)
    message = str(refused.value)
    assert message.startswith(f"documents_1k.jsonl: checksum mismatch: expected 5,522,996 bytes with sha256 {DOCUMENTS.sha256}")
    assert str(mirror / DOCUMENTS.name) in message and "rro data fetch webshop" in message
    assert not (tmp_path / "home" / "data" / "webshop" / DOCUMENTS.name).exists()

    # through the CLI: the mirror's wrong copy is named, and the other form is not tried instead
    from typer.testing import CliRunner

    from rro.cli import app

    result = CliRunner().invoke(app, ["data", "fetch", "webshop", "--from", str(mirror.parent)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "documents_1k.jsonl: checksum mismatch" in output and "The copy refused is" in output


# Upstream's own answers, read from its Lucene index (`search_index_1k`) with pyserini 0.22.1 (BM25
# k1=0.9, b=0.4): bench/webshop_search_fidelity.py compares hundreds of queries.
LUCENE_TOP_10 = {
    "blue cotton shirt for men": ["B09KXCHWGD", "B07JVVDJ6L", "B09RVF4JP1", "B09QQP3356", "B09R9YCM6R",
                                  "B09P39QN2W", "B09NNMV9LN", "B07HRFSNL4", "B085WQKRRJ", "B07N7TDKXQ"],
}


def test_search_answers_as_upstreams_lucene_index(catalog, tmp_path):
    engine = SearchEngine(catalog, cache_dir=tmp_path / "index")
    for query, expected in LUCENE_TOP_10.items():
        assert engine.search(query)[:10] == expected


def test_the_oracle_on_the_real_catalogue(catalog, tmp_path):
    from rro.config import ExpertsConfig
    from rro.experts import collect_experts

    report = collect_experts(ExpertsConfig(env="webshop", split="test", limit=20, min_reward=0.0,
                                           output=tmp_path / "experts.jsonl"))
    assert report["tasks"] == 20
    records = [json.loads(line) for line in (tmp_path / "experts.jsonl").read_text().splitlines()]
    assert len(records) == 20 and all(r["messages"][-1]["content"].endswith("click[Buy Now]") for r in records)
    assert sum(r["reward"] == 1.0 for r in records) >= 15  # measured on the whole test split: see the docs


def test_a_synthetic_goal_bought_exactly_scores_one_unless_colour_normalisation_intervenes(catalog):
    """Upstream scores a synthetic goal's options as (name, value) pairs: an exact purchase scores 1.0,
    except where colour normalisation rewrites the chosen value but not the pair."""
    affected = 0
    for goal in catalog.goals("synthetic")[:200]:
        product = catalog.products[goal["asin"]]
        reward, _ = webshop_reward(product, goal, catalog.prices[goal["asin"]], dict(goal["goal_options"]))
        rewritten = any(normalize_color(v) != v and v not in COLOR_SET for v in goal["goal_options"].values())
        assert reward == 1.0 or rewritten, goal
        affected += reward < 1.0
    assert 0 < affected < 200


def test_eval_explore_and_play_run_on_the_real_catalogue(catalog, tmp_path):
    from rro.config import EvalConfig, ExploreConfig
    from rro.evaluate import evaluate
    from rro.explore import explore

    common = dict(env="webshop", model="tiny-random", dtype="float32", split="test", limit=1, max_steps=2, max_new_tokens=8)
    summary = evaluate(EvalConfig(**common, output=tmp_path / "eval"))
    assert summary["tasks"] == 1 and 0.0 <= summary["avg_reward"] <= 100.0
    stats = explore(ExploreConfig(**common, strategy="rising", rollouts=1, max_candidates=2, output=tmp_path / "explore"))
    assert stats["tasks"] == 1 and 1 <= stats["candidates_per_step"]["mean"] <= 2
    env = make("webshop")
    task = spec("webshop").load_tasks(split="test", goals="human")[0]
    assert task.instruction in env.reset(task)
    results = env.step(f"search[{task.fields['query']}]").observation
    assert "Page 1 (Total results: " in results


# A whole `rro run` with the tiny model: the oracle's trajectories, SFT, IPR exploration along them
# (the oracle buys within 8 turns, so its Buy Now is valued exactly and pairs exist), DPO, evaluation.
REAL_RUN = """
output = "{output}"
model = "tiny-random"
env = "webshop"
strategies = ["ipr"]

[experts]
limit = 2

[sft]
epochs = 1
batch_size = 2
gradient_accumulation_steps = 1
precision = "fp32"
activation_checkpointing = false
max_length = 4096  # real item pages list every option

[eval]
limit = 1
max_steps = 2
max_new_tokens = 8
dtype = "float32"

[explore]
limit = 1
rollouts = 1
max_candidates = 2
max_steps = 8
max_new_tokens = 8
dtype = "float32"

[dpo]
epochs = 1
precision = "fp32"
activation_checkpointing = false
max_length = 4096
"""


def test_rro_run_on_the_real_catalogue(catalog, tmp_path):
    """`rro run` through the command line, in a process of its own (as a user runs it)."""
    import subprocess
    import sys

    (tmp_path / "run.toml").write_text(REAL_RUN.format(output=tmp_path / "run"))
    done = subprocess.run([sys.executable, "-m", "rro.cli", "run", str(tmp_path / "run.toml")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert [m["method"] for m in results["methods"]] == ["sft", "ipr"] and results["env"] == "webshop"
    assert json.loads((run / "experts.report.json").read_text())["kept"] == 2
    pairs = (run / "ipr" / "iter1" / "explore" / "pairs.jsonl").read_text().splitlines()
    trained = json.loads((run / "ipr" / "iter1" / "dpo" / "rro-train.json").read_text())
    assert pairs and trained["records"] == len(pairs)
    assert json.loads((run / "ipr" / "iter1" / "eval" / "summary.json").read_text())["env"] == "webshop"
