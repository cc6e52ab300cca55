"""Variants: named methods that run one strategy with their own [explore] settings, beside the
plain strategies, in one `rro run` (e.g. both anchors of rising)."""

import pytest

from rro.config import ConfigError, PipelineConfig
from rro.pipeline import plan


def pipeline(tmp_path, **fields):
    return PipelineConfig(output=tmp_path / "run", model="tiny-random", **fields)


def test_variants_run_beside_the_strategies_with_their_own_explore_settings(tmp_path):
    config = pipeline(tmp_path, strategies=["rising", "fixed"], explore={"rollouts": 3, "limit": 4},
                      variants={"rising-expert": {"strategy": "rising", "anchor": "expert"},
                                "fixed-expert": {"strategy": "fixed", "anchor": "expert", "rise_at_max": False}})
    stages, methods = plan(config)
    assert [m["method"] for m in methods] == ["sft", "rising", "fixed", "rising-expert", "fixed-expert"]
    explores = {stage.name: stage.config for stage in stages if stage.name.startswith("explore-")}
    assert list(explores) == ["explore-rising-1", "explore-fixed-1", "explore-rising-expert-1", "explore-fixed-expert-1"]
    for name, strategy, anchor, ceiling in [("rising", "rising", "policy", True), ("fixed", "fixed", "policy", True),
                                            ("rising-expert", "rising", "expert", True),
                                            ("fixed-expert", "fixed", "expert", False)]:
        explored = explores[f"explore-{name}-1"]
        assert (explored.strategy, explored.anchor, explored.rise_at_max) == (strategy, anchor, ceiling)
        assert explored.rollouts == 3 and explored.limit == 4  # the shared [explore] table underneath
        assert explored.model == str(tmp_path / "run" / "sft")  # every method starts from the one SFT model
        assert explored.output == tmp_path / "run" / name / "iter1" / "explore"
        method = next(m for m in methods if m["method"] == name)
        assert (method["strategy"], method["anchor"], method["rise_at_max"]) == (strategy, anchor, ceiling)
        assert method["eval"] == str(tmp_path / "run" / name / "iter1" / "eval")


@pytest.mark.parametrize("variants, message", [
    ({"rising-expert": {"anchor": "expert"}}, r"\[variants.rising-expert\] needs a strategy"),
    ({"rising": {"strategy": "rising"}}, "already a method"),
    ({"eval-sft": {"strategy": "rising"}}, "already a method or a folder"),
    ({"fixed": {"strategy": "rising"}}, "already a method or a folder"),  # a strategy's folder, run or not
    ({"sft": {"strategy": "sft"}}, "already a method or a folder"),
    ({"Rising Expert": {"strategy": "rising"}}, "a method name is lower-case"),
    ({"x": {"strategy": "rising", "anchor": "nowhere"}}, r"variants.x.anchor"),
    ({"x": {"strategy": "ipr", "anchor": "expert"}}, "applies to the rising and fixed strategies"),
    ({"x": {"strategy": "rising", "output": "elsewhere"}}, "the pipeline sets it"),
])
def test_a_bad_variant_fails_before_anything_runs(tmp_path, variants, message):
    with pytest.raises(ConfigError, match=message):
        plan(pipeline(tmp_path, strategies=["rising"], variants=variants))


def test_variants_and_iterations(tmp_path):
    _, methods = plan(pipeline(tmp_path, strategies=["rising"], iterations=2, variants={"rx": {"strategy": "rising"}}))
    assert [m["method"] for m in methods] == ["sft", "rising-1", "rising-2", "rx-1", "rx-2"]
    assert methods[4]["explore"] == [str(tmp_path / "run" / "rx" / f"iter{i}" / "explore") for i in (1, 2)]


def test_compare_large_explores_the_same_tasks_with_both_anchors(tmp_path):
    from pathlib import Path

    from rro.config import load_config

    config = load_config(PipelineConfig, Path(__file__).parents[1] / "configs" / "compare-large.toml")
    stages, methods = plan(config)
    assert [m["method"] for m in methods] == ["sft", "rising", "fixed", "fixed-expert", "rising-expert", "ipr"]
    explores = [stage.config for stage in stages if stage.name.startswith("explore-")]
    assert {(c.strategy, c.anchor) for c in explores} == {("rising", "policy"), ("fixed", "policy"), ("ipr", "policy"),
                                                          ("rising", "expert"), ("fixed", "expert")}
    assert {(c.limit, c.rollouts, c.max_candidates, c.seed, c.split) for c in explores} == {(200, 2, 3, 0, "train")}
    replayed = {c.strategy: c.replay_from for c in explores if c.anchor == "expert" or c.strategy == "ipr"}
    recording = Path("runs/compare-large/fixed-expert/iter1/explore")
    assert replayed == {"fixed": None, "rising": recording, "ipr": recording}
    dpos = [stage.config.model_dump(exclude={"pairs", "output"}) for stage in stages if stage.name.startswith("dpo-")]
    assert len(dpos) == 5 and all(d == dpos[0] for d in dpos)  # the same DPO settings for every method
    evals = [stage.config for stage in stages if stage.name.startswith("eval-")]
    assert {(c.split, c.scheme, c.limit) for c in evals} == {("test", "by-query", None)}


def test_a_variant_replays_a_method_explored_before_it(tmp_path):
    config = pipeline(tmp_path, strategies=["fixed"], explore={"anchor": "policy"},
                      variants={"fixed-expert": {"strategy": "fixed", "anchor": "expert"},
                                "rising-expert": {"strategy": "rising", "anchor": "expert", "replay_from": "fixed-expert"}})
    stages, _ = plan(config)
    explores = {stage.name: stage.config for stage in stages if stage.name.startswith("explore-")}
    assert explores["explore-rising-expert-1"].replay_from == tmp_path / "run" / "fixed-expert" / "iter1" / "explore"
    assert explores["explore-fixed-expert-1"].replay_from is None
    names = [stage.name for stage in stages]
    assert names.index("explore-fixed-expert-1") < names.index("explore-rising-expert-1")


def test_ipr_left_out_of_the_strategies_comes_back_replayed_under_its_own_name(tmp_path):
    config = pipeline(tmp_path, strategies=["fixed"], variants={"fixed-expert": {"strategy": "fixed", "anchor": "expert"},
                                                                "ipr": {"strategy": "ipr", "replay_from": "fixed-expert"}})
    stages, methods = plan(config)
    (ipr,) = [stage.config for stage in stages if stage.name == "explore-ipr-1"]
    assert (ipr.strategy, ipr.replay_from) == ("ipr", tmp_path / "run" / "fixed-expert" / "iter1" / "explore")
    assert [m["method"] for m in methods] == ["sft", "fixed", "fixed-expert", "ipr"]


@pytest.mark.parametrize("fields, message", [
    (dict(variants={"rx": {"strategy": "rising", "anchor": "expert", "replay_from": "fx"},
                    "fx": {"strategy": "fixed", "anchor": "expert"}}), "name a method of this run that explores before 'rx'"),
    (dict(variants={"rx": {"strategy": "rising", "anchor": "expert", "replay_from": "nowhere"}}), "replay_from = 'nowhere'"),
    (dict(explore={"replay_from": "rising"}), r"\[explore\] may not set replay_from"),
    (dict(iterations=2, variants={"fx": {"strategy": "fixed", "anchor": "expert"},
                                  "rx": {"strategy": "rising", "anchor": "expert", "replay_from": "fx"}}), "iterations = 1"),
    (dict(variants={"rx": {"strategy": "rising", "replay_from": "rising"}}), "expert-anchored explorations only"),
])
def test_a_bad_replay_fails_before_anything_runs(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=message):
        plan(pipeline(tmp_path, strategies=["rising"], **fields))


def test_the_equal_pairs_arm_trains_every_method_on_the_fewest_pairs(tmp_path, monkeypatch):
    import json

    import rro.pipeline

    config = pipeline(tmp_path, strategies=["rising", "fixed"], equal_pairs=True,
                      variants={"ipr": {"strategy": "ipr"}})
    stages, methods = plan(config)
    run = tmp_path / "run"
    assert [m["method"] for m in methods] == ["sft", "rising", "fixed", "ipr", "sft-equal", "rising-equal", "fixed-equal",
                                              "ipr-equal"]
    by_name = {stage.name: stage for stage in stages}
    # The arm evaluates its starting model again, as eval-sft does, before training anything.
    arm = [stage.name for stage in stages][-7:]
    assert arm[0] == "eval-sft-equal" and by_name["eval-sft-equal"].config.model == str(run / "sft")
    assert by_name["eval-sft-equal"].config.model_dump(exclude={"output"}) == by_name["eval-sft"].config.model_dump(exclude={"output"})
    for name in ("rising", "fixed", "ipr"):
        dpo = by_name[f"dpo-{name}-equal"].config
        assert dpo.model == str(run / "sft")  # from SFT, as the method's own DPO
        assert dpo.pairs == [run / name / "iter1" / "explore" / "pairs.jsonl"]
        assert by_name[f"eval-{name}-equal"].config.model == str(run / name / "equal" / "dpo")
        equal = next(m for m in methods if m["method"] == f"{name}-equal")
        assert equal["explore"] == [str(run / name / "iter1" / "explore")] and equal["equal_pairs"]

    # Once the explorations are done, each method's DPO gets the smallest count (here fixed's 2).
    counts = {"rising": 5, "fixed": 2, "ipr": 3}
    for name, count in counts.items():
        folder = run / name / "iter1" / "explore"
        folder.mkdir(parents=True)
        (folder / "pairs.jsonl").write_text("".join(json.dumps({"pair": i}) + "\n" for i in range(count)))
    trained = []
    monkeypatch.setattr(rro.pipeline, "train_dpo_stage", lambda dpo_config: trained.append(dpo_config))
    by_name["dpo-rising-equal"].run(by_name["dpo-rising-equal"].config)
    assert trained[0].pairs_sample == 2 and trained[0].output == run / "rising" / "equal" / "dpo"


def test_a_variant_may_not_take_an_equal_pairs_arm_name(tmp_path):
    with pytest.raises(ConfigError, match="METHOD-equal names the equal-pairs arm's methods"):
        plan(pipeline(tmp_path, strategies=["rising"], equal_pairs=True, variants={"fixed-equal": {"strategy": "fixed"}}))


def test_the_equal_pairs_arm_needs_one_iteration(tmp_path):
    with pytest.raises(ConfigError, match="equal_pairs needs iterations = 1"):
        plan(pipeline(tmp_path, strategies=["rising"], iterations=2, equal_pairs=True))
