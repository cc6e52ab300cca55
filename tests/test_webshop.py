"""WebShop on the small fixture catalogue (tests/data/webshop): loading, goals, pages and
navigation, the oracle, and the pipeline commands with the tiny model (the reward has its own
tests in test_webshop_reward.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rro.agent.parse import parse_turn
from rro.envs.base import make, spec
from rro.envs.webshop.catalog import load_catalog
from rro.envs.webshop.reward import webshop_reward

FIXTURE = Path(__file__).parent / "data" / "webshop"
QUERY = "Instruction: [SEP] i need a men's cotton t-shirt that is machine washable, in navy blue and size large, and price lower than 40.00 dollars"
TEE_PAGE = (QUERY + " [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] navy blue [SEP] black [SEP] heather grey "
            "[SEP] size [SEP] medium [SEP] large [SEP] x-large [SEP] Men's Cotton Crew Neck T-Shirt, Short Sleeve "
            "[SEP] Price: $19.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")


@pytest.fixture(scope="module")
def catalog(webshop_catalog):
    return webshop_catalog


def tee_task():
    return next(t for t in spec("webshop").load_tasks(split="all") if t.instruction in QUERY)


def test_products_load_as_upstream_parses_them(catalog):
    assert len(catalog.products) == 23  # 25 records less a duplicate ASIN and an ASIN "nan"
    assert catalog.products["B0TEE00003"].title.startswith("Women's V-Neck")  # the first record of a duplicate wins
    assert "nan" not in catalog.products
    ranged = catalog.products["B0TEE00002"]
    assert (ranged.pricing, ranged.price_tag) == ([12.5, 18.0], "$12.5 to $18.0")
    assert 12.5 <= catalog.prices["B0TEE00002"] <= 18.0
    assert (catalog.products["B0COFF0003"].pricing, catalog.products["B0COFF0003"].price_tag) == ([100.0], "$100.0")
    assert catalog.products["B0SHOE0002"].options == {"color": ["pink", "grey | teal"], "size": ["7", "8", "9"]}
    assert catalog.products["B0SNAC0002"].options == {}
    assert catalog.products["B0LONG0001"].attributes == ["DUMMY_ATTR"]  # annotation without attributes
    assert catalog.products["B0TOYS0001"].attributes == ["DUMMY_ATTR"]  # no annotation at all
    assert catalog.products["B0HAIR0002"].bullet_points == ["Ionic technology"]  # a string, not a list


def test_goals_are_upstreams_and_seeded(catalog):
    # 18 instructions less one without attributes and one for a product not in the catalogue
    assert len(catalog.goals("human")) == 16 and catalog.goals() is catalog.goals("human")
    assert catalog.goals("synthetic") == []  # the fixture's attribute file holds no instructions
    tee = next(g for g in catalog.goals("human") if g["instruction_text"] in QUERY)
    assert tee["attributes"] == ["machine wash", "cotton"] and tee["goal_options"] == ["navy blue", "large"]
    # upstream: two of the four next multiples of 10 above the price, the larger one is the limit
    assert tee["price_upper"] in (30.0, 40.0, 50.0) and tee["instruction_text"].endswith(f"{tee['price_upper']:.2f} dollars")
    again = load_catalog.__wrapped__("1000")  # a fresh load draws the same prices and order
    assert [g["instruction_text"] for g in again.goals("human")] == [g["instruction_text"] for g in catalog.goals("human")]
    tasks = spec("webshop").load_tasks(split="test")
    assert [t.id for t in tasks] == [str(i) for i in range(16)]  # test = goals 0-499
    assert spec("webshop").load_tasks(split="train") == [] and spec("webshop").load_tasks(split="dev") == []
    with pytest.raises(ValueError, match="unknown split"):
        spec("webshop").load_tasks(split="validation")


def test_pages_and_navigation(catalog):
    env = make("webshop")
    assert env.reset(tee_task()) == f"WebShop [SEP] {QUERY} [SEP] Search"
    results, reward, done, info = env.step("search[men's shirt]")
    assert results.startswith(QUERY + " [SEP] Back to Search [SEP] Page 1 (Total results: 5) [SEP] Next > [SEP] ")
    assert "B0TEE00001 [SEP] Men's Cotton Crew Neck T-Shirt, Short Sleeve [SEP] $19.99" in results
    assert "b0tee00001" in info["available_actions"]["clickables"] and not info["available_actions"]["has_search_bar"]
    page2 = env.step("click[Next >]").observation
    assert page2 == QUERY + " [SEP] Back to Search [SEP] Page 2 (Total results: 5) [SEP] < Prev [SEP] Next >"
    assert env.step("click[< Prev]").observation == results
    assert env.step("click[B0TEE00001]").observation == TEE_PAGE
    env.step("click[navy blue]"), env.step("click[large]")
    assert env.options == {"color": "navy blue", "size": "large"}
    description = env.step("click[Description]").observation
    assert description == QUERY + " [SEP] Back to Search [SEP] < Prev [SEP] A soft 100% cotton t-shirt for everyday wear. Machine wash."
    assert env.step("click[< Prev]").observation == TEE_PAGE
    features = env.step("click[Features]").observation
    assert features == QUERY + " [SEP] Back to Search [SEP] < Prev [SEP] 100% cotton [SEP] Machine wash cold [SEP] Crew neck"
    # unavailable clicks, click[search] and unparsable actions change nothing
    for action in ("click[Buy Now]", "click[search]", "click[b0shoe0001]", "jump[x]", "search[]"):
        result = env.step(action)
        assert (result.observation, result.reward, result.done) == (features, 0.0, False) and result.info["error"]
    env.step("click[< Prev]")
    assert env.step("click[< Prev]").observation == results  # back to the results, options cleared
    assert env.options == {} and env.asin is None
    assert env.step("click[Back to Search]").observation.startswith("WebShop [SEP] Instruction:")
    assert "Total results: 0" in env.step("search[zzzz qqq]").observation
    env.step("search[men's shirt]"), env.step("click[B0TEE00001]"), env.step("click[navy blue]"), env.step("click[large]")
    done_page, reward, done, info = env.step("click[Buy Now]")
    assert (reward, done, info["purchased"]) == (1.0, True, "B0TEE00001")
    assert done_page == "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"


def test_search_is_bm25_over_upstreams_document_text_and_cached(catalog, rro_home):
    from rro.envs.webshop.search import SearchEngine

    engine = SearchEngine(catalog)
    assert engine.search("aluminum free deodorant")[0] == "B0DEOD0001"
    assert engine.search("grey teal")[0] == "B0SHOE0002"  # option text is indexed
    assert engine.search("the and of") == []  # stop words only: nothing, as Lucene
    assert len(engine.search("men women")) <= 50
    cached = list((rro_home / "webshop").glob("bm25-1000-*"))
    assert cached and SearchEngine(catalog).search("soy candle") == engine.search("soy candle")


def test_parse_turns_for_webshop():
    turn = parse_turn("Thought: look\nAction: Search[red cotton shirt]", "webshop")
    assert turn.action == "search[red cotton shirt]" and turn.well_formed
    turn = parse_turn("Thought: buy\nAction: click[Buy Now] now", "webshop")
    assert turn.action == "click[Buy Now]" and not turn.well_formed
    bad = parse_turn("Thought: hm\nAction: ```sql\nSELECT 1\n```", "webshop")
    assert bad.action is None and "search[keywords]" in bad.observation


def test_oracle_buys_the_goal_product_and_reports_rewards(catalog, tmp_path):
    from rro.config import ExpertsConfig
    from rro.experts import collect_experts

    report = collect_experts(ExpertsConfig(env="webshop", split="all", output=tmp_path / "experts.jsonl"))
    assert report["kept"] == report["tasks"] == 16 and report["reward_counts"] == {"1.0": 16}
    record = json.loads((tmp_path / "experts.jsonl").read_text().splitlines()[0])
    assert record["messages"][-1]["content"].endswith("Action: click[Buy Now]")


def test_oracle_picks_the_best_result_when_search_misses_the_goal(catalog):
    from rro.envs.base import Task
    from rro.rollout import run_expert_episode

    task = next(t for t in spec("webshop").load_tasks(split="all") if t.fields["asin"] == "B0COFF0001")
    hidden = Task(task.env, task.id, task.instruction, {**task.fields, "asin": "B0UNLISTED"})
    episode = run_expert_episode(spec("webshop"), make("webshop"), hidden, 10)
    bought = episode.steps[-1].info["purchased"]
    env = make("webshop")
    env.reset(hidden)
    shown = [a for a in env.step(f"search[{episode.steps[0].action[7:-1]}]").observation.split(" [SEP] ") if a in catalog.products]
    from rro.envs.webshop.expert import choose_options

    best = max(webshop_reward(catalog.products[a], hidden.fields, catalog.prices[a],
                              choose_options(catalog.products[a], hidden.fields["goal_options"]))[0] for a in shown)
    assert bought in shown and episode.reward == pytest.approx(best)


def test_config_refuses_settings_of_another_environment():
    from rro.config import ConfigError, EvalConfig, load_config

    with pytest.raises(ConfigError, match="backend is not a setting of webshop"):
        load_config(EvalConfig, env="webshop", backend="mariadb", output="x")
    with pytest.raises(ConfigError, match="unknown environment"):
        load_config(EvalConfig, env="webshoppe", output="x")


def test_eval_and_explore_run_on_webshop(catalog, tmp_path):
    from rro.config import EvalConfig, ExploreConfig
    from rro.evaluate import evaluate
    from rro.explore import explore

    common = dict(env="webshop", model="tiny-random", dtype="float32", split="test", limit=2, max_steps=3, max_new_tokens=16)
    summary = evaluate(EvalConfig(**common, output=tmp_path / "eval"))
    assert summary["tasks"] == 2 and 0.0 <= summary["avg_reward"] <= 100.0
    stats = explore(ExploreConfig(**common, strategy="rising", rollouts=1, max_candidates=2, output=tmp_path / "explore"))
    assert stats["tasks"] == 2 and stats["steps"] >= 1 and 1 <= stats["candidates_per_step"]["mean"] <= 2
    expert_summary = evaluate(EvalConfig(env="webshop", policy="expert", split="test", output=tmp_path / "oracle"))
    assert expert_summary["avg_reward"] == 100.0


def test_buy_now_where_it_does_nothing_is_valued_by_rollouts(catalog, tiny_policy):
    from rro.rollout import SamplingConfig
    from rro.values import MonteCarloValues, State

    values = MonteCarloValues(tiny_policy, lambda: make("webshop"), spec("webshop").terminal_actions, rollouts=3,
                              sampling=SamplingConfig(temperature=1.0, max_new_tokens=8, seed=0), max_steps=4)
    task = tee_task()
    on_item_page = State(task, ("Thought: a\nAction: search[men's shirt]", "Thought: b\nAction: click[B0TEE00001]"))
    on_results = State(task, on_item_page.turns[:1])
    buy = "Thought: buy\nAction: click[Buy Now]"
    taken, declined = values.q_values([(on_item_page, buy), (on_results, buy)])
    assert taken.exact and taken.rollouts == 1 and taken.value == pytest.approx(0.6)  # no options chosen
    assert not declined.exact and declined.rollouts == 3


def test_fetch_play_and_missing_files_through_the_cli(catalog, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rro.cli import app

    runner = CliRunner()
    fetched = runner.invoke(app, ["data", "fetch", "webshop", "--from", str(FIXTURE)])
    assert fetched.exit_code == 0 and fetched.output.count("ok") == 3, fetched.output
    played = runner.invoke(app, ["play", "webshop", "--task", "0"],
                           input="search[cotton shirt dress]\nclick[B0LONG0001]\nclick[olive green]\nclick[small]\nclick[Buy Now]\n")
    assert played.exit_code == 0 and "reward: 1.0" in played.output, played.output
    assert "clickable: back to search, < prev" in played.output
    splits = runner.invoke(app, ["data", "splits", "webshop"])
    assert splits.exit_code == 0 and "test" in splits.output and "16" in splits.output, splits.output
    # the full catalogue was never fetched: the error names the command and the folder
    monkeypatch.delenv("RRO_DATA_MIRROR", raising=False)
    missing = runner.invoke(app, ["play", "webshop-full", "--task", "0"])
    assert missing.exit_code == 1
    output = " ".join(missing.output.split())  # rich wraps long lines
    assert "items_shuffle.json + items_human_ins.json have not been fetched" in output
    assert "rro data fetch webshop-full" in output
    # a download page instead of the data is refused
    (tmp_path / "items_shuffle.json").write_text("<html>Google Drive can't scan this file</html>")
    refused = runner.invoke(app, ["data", "fetch", "webshop-full", "--from", str(tmp_path)])
    assert refused.exit_code == 1 and "not a JSON file" in refused.output


def test_the_pipeline_runs_on_webshop(catalog, tmp_path):
    from rro.config import PipelineConfig, load_config
    from rro.pipeline import run_pipeline
    from tests.test_pipeline import TINY_RUN

    config_text = TINY_RUN.format(output=tmp_path / "run").replace(
        'model = "tiny-random"', 'model = "tiny-random"\nenv = "webshop"').replace(
        'strategies = ["fixed", "rising"]', 'strategies = ["ipr"]').replace(
        "[experts]\n", '[experts]\nsplit = "all"\n').replace("[explore]\n", '[explore]\nsplit = "all"\n').replace(
        "max_candidates = 2\nmax_steps = 2", "max_candidates = 2\nmax_steps = 6")  # the oracle buys at step 4 or 5
    (tmp_path / "run.toml").write_text(config_text)
    results = run_pipeline(load_config(PipelineConfig, tmp_path / "run.toml"))
    run = tmp_path / "run"
    assert [m["method"] for m in results["methods"]] == ["sft", "ipr"] and results["env"] == "webshop"
    assert json.loads((run / "experts.report.json").read_text())["kept"] == 4
    # the expert's Buy Now is valued exactly (1.0) against the tiny model's turn: IPR pairs exist
    pairs = [json.loads(line) for line in (run / "ipr" / "iter1" / "explore" / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all("click[" in p["chosen"][0]["content"] or "search[" in p["chosen"][0]["content"] for p in pairs)
    trained = json.loads((run / "ipr" / "iter1" / "dpo" / "rro-train.json").read_text())
    assert "unchanged" not in trained and trained["records"] == len(pairs)
    assert json.loads((run / "ipr" / "iter1" / "eval" / "summary.json").read_text())["env"] == "webshop"


def test_environments_of_one_process_share_the_catalogue_and_its_index(webshop_catalog):
    # A Ray worker is one process that opens many environments: it loads the catalogue and builds the
    # search index once, on its first environment.
    from rro.envs.webshop.env import WebShopEnv

    first, second = WebShopEnv(), WebShopEnv()
    assert first.catalog is second.catalog is webshop_catalog
    assert first.engine is second.engine
