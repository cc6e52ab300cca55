"""SFT and DPO through TRL: assistant-only loss, pair fitting, reference model, saving, resuming."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rro.config import ConfigError, DpoConfig, PolicyConfig, SftConfig, load_config
from rro.train.common import SMOLLM2_TEMPLATE, SMOLLM2_TRAINING_TEMPLATE, TRAIN_RECORD
from rro.train.dpo import fit_pair, load_pairs
from rro.train.progress import ELAPSED_FILE


@pytest.fixture(scope="module")
def experts_file(tmp_path_factory, rro_home):
    from rro.config import ExpertsConfig
    from rro.experts import collect_experts

    path = tmp_path_factory.mktemp("experts") / "experts.jsonl"
    collect_experts(ExpertsConfig(limit=6, output=path))
    return path


@pytest.fixture(scope="module")
def conversations(experts_file):
    return [json.loads(line)["messages"] for line in experts_file.read_text().splitlines()]


@pytest.fixture(scope="module")
def tokenizer(rro_home):
    from transformers import AutoTokenizer

    from rro.policy.models import fetch_model

    return AutoTokenizer.from_pretrained(fetch_model("tiny-random"))


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory, conversations):
    """Step-level pairs from expert trajectories: the expert's query over a wrong one."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    with open(path, "w") as handle:
        for messages in conversations:
            query_turn = [i for i, m in enumerate(messages) if m["role"] == "assistant"][-2]
            wrong = {"role": "assistant", "content": "Thought: A guess.\nAction: ```sql\nSELECT 1\n```"}
            handle.write(json.dumps({"prompt": messages[:query_turn], "chosen": [messages[query_turn]],
                                     "rejected": [wrong], "task_id": 0}) + "\n")
    return path


def small(cls, **fields):
    """Settings that train a tiny model in seconds."""
    defaults = dict(model="tiny-random", epochs=1, batch_size=2, gradient_accumulation_steps=1, logging_steps=1,
                    save_steps=1, precision="fp32", activation_checkpointing=False)
    return cls(**{**defaults, **fields})


def test_marked_template_renders_exactly_like_the_shipped_one(tokenizer, conversations):
    assert tokenizer.chat_template == SMOLLM2_TEMPLATE
    for messages in conversations:
        for end in range(1, len(messages) + 1):
            for generation_prompt in (False, True):
                shipped = tokenizer.apply_chat_template(messages[:end], tokenize=False,
                                                        add_generation_prompt=generation_prompt)
                marked = tokenizer.apply_chat_template(messages[:end], tokenize=False, chat_template=SMOLLM2_TRAINING_TEMPLATE,
                                                       add_generation_prompt=generation_prompt)
                assert marked == shipped


def test_sft_takes_loss_on_assistant_turns_and_their_end_token_only(tmp_path, experts_file, conversations):
    from rro.train.sft import build_trainer

    trainer, tokenizer, _, details = build_trainer(small(SftConfig, data=[experts_file], output=tmp_path / "m", limit=3))
    assert details == {"records": 3, "left_out_too_long": 0}
    for index in range(3):
        batch = trainer.data_collator([trainer.train_dataset[index]])
        labels = batch["labels"][0]
        trained = tokenizer.decode(batch["input_ids"][0][labels != -100])
        expected = "".join(m["content"] + "<|im_end|>" for m in conversations[index] if m["role"] == "assistant")
        assert trained == expected
        assert "Observation:" not in trained and "Question:" not in trained


def test_sft_leaves_out_trajectories_longer_than_max_length(tmp_path, experts_file):
    from rro.train.sft import build_trainer

    _, _, _, details = build_trainer(small(SftConfig, data=[experts_file], output=tmp_path / "m", max_length=500))
    assert details["left_out_too_long"] > 0
    assert details["records"] + details["left_out_too_long"] == 6


def test_sft_saves_an_ordinary_checkpoint_and_a_rerun_is_a_no_op(tmp_path, experts_file):
    from rro.policy.hf import HFPolicy
    from rro.train.sft import sft

    config = small(SftConfig, data=[experts_file], output=tmp_path / "sft", limit=4)
    record = sft(config)
    out = tmp_path / "sft"
    assert record["kind"] == "sft" and record["records"] == 4
    assert [entry["step"] for entry in record["log_history"] if "loss" in entry] == [1, 2]
    assert not (out / "trainer").exists()  # optimizer states are dropped once training is complete
    saved = json.loads((out / "tokenizer_config.json").read_text()).get("chat_template") or \
        (out / "chat_template.jinja").read_text()
    assert saved == SMOLLM2_TEMPLATE  # the training markers stay out of the saved tokenizer
    assert PolicyConfig(model=str(out)).resolved_icl_shots() == 0  # rro checkpoints know the format
    completion = HFPolicy(str(out), dtype="float32").generate([[{"role": "user", "content": "hi"}]], 1, 0.0, 4)[0][0]
    assert completion.generated_tokens >= 1

    stamp = (out / TRAIN_RECORD).stat().st_mtime_ns
    assert sft(config) == record
    assert (out / TRAIN_RECORD).stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="other settings"):
        sft(config.model_copy(update={"learning_rate": 3e-4}))
    # A model trained before rro gained a setting is still this training (the setting at its default),
    # and where it ran (placement, e.g. report_to) does not make it another one.
    saved = json.loads((out / TRAIN_RECORD).read_text())
    del saved["config"]["warmup_steps"]
    (out / TRAIN_RECORD).write_text(json.dumps(saved))
    assert sft(config)["kind"] == "sft"
    assert sft(config.model_copy(update={"report_to": "tensorboard"}))["kind"] == "sft"
    with pytest.raises(ConfigError, match="other settings"):
        sft(config.model_copy(update={"warmup_steps": 0.5}))


def _sft_interrupted_after_step_2(config: SftConfig):
    """Train `config` until its checkpoint after step 2 is saved, then interrupt it, as Ctrl-C would."""
    from transformers import TrainerCallback

    import rro.train.sft as sft_module

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    trainer, *_ = sft_module.build_trainer(config)
    trainer.add_callback(Interrupt())  # after rro's clock: the checkpoint's time is saved first
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    checkpoint = Path(config.output) / "trainer" / "checkpoint-2"
    assert checkpoint.exists() and (checkpoint / ELAPSED_FILE).exists()
    return checkpoint


def test_interrupted_sft_resumes_from_its_last_checkpoint(tmp_path, experts_file, monkeypatch):
    import rro.train.sft as sft_module

    config = small(SftConfig, data=[experts_file], output=tmp_path / "sft", limit=6)
    checkpoint = _sft_interrupted_after_step_2(config)
    # The first piece's seconds, as a slower machine would have spent them: the resumed training's
    # record counts them, so it tells what the model cost, not what its last piece did.
    (checkpoint / ELAPSED_FILE).write_text(json.dumps({"seconds": 5000.0}))

    resumed_from = []
    original = sft_module.last_checkpoint
    monkeypatch.setattr(sft_module, "last_checkpoint", lambda work: resumed_from.append(original(work)) or resumed_from[-1])
    record = sft_module.sft(config)
    assert resumed_from[0].endswith("checkpoint-2")
    assert [entry["step"] for entry in record["log_history"] if "loss" in entry] == [1, 2, 3]
    assert record["resumed_from_step"] == 2 and 5000.0 < record["train_seconds"] < 5000.0 + 600
    assert "train_seconds_from_step" not in record


def test_a_checkpoint_without_its_time_leaves_the_earlier_seconds_unknown(tmp_path, experts_file):
    import rro.train.sft as sft_module

    config = small(SftConfig, data=[experts_file], output=tmp_path / "sft", limit=6)
    (_sft_interrupted_after_step_2(config) / ELAPSED_FILE).unlink()  # as an older rro saved it
    record = sft_module.sft(config)
    assert record["resumed_from_step"] == 2 and record["train_seconds_from_step"] == 2


def test_fit_pair_trims_the_oldest_exchanges_first(tokenizer, conversations):
    messages = conversations[0]
    query_turn = [i for i, m in enumerate(messages) if m["role"] == "assistant"][-2]
    pair = {"prompt": messages[:query_turn], "chosen": [messages[query_turn]], "rejected": [messages[1]]}
    full = max(len(tokenizer.apply_chat_template(pair["prompt"] + pair[s], return_dict=True)["input_ids"])
               for s in ("chosen", "rejected"))
    assert fit_pair(tokenizer, pair, full) == pair
    trimmed = fit_pair(tokenizer, pair, full - 1)
    # The first agent turn and its observation went; the task and the latest exchanges stay.
    assert trimmed["prompt"] == [pair["prompt"][0], *pair["prompt"][3:]]
    assert fit_pair(tokenizer, pair, 40) is None


def test_fit_pair_keeps_the_worked_example_and_the_task(tokenizer):
    from rro.agent.prompts import agent_message, conversation_start, observation_message

    start = conversation_start("intercode-sql", "Database: x\nQuestion: how many?", icl_shots=1)
    exchanges = [agent_message("Thought: look.\nAction: ```sql\nSHOW TABLES\n```"), observation_message("[('t',)]")] * 3
    pair = {"prompt": start + exchanges, "chosen": [agent_message("Action: submit")], "rejected": [agent_message("Oops")]}
    longest = len(tokenizer.apply_chat_template(pair["prompt"] + pair["chosen"], return_dict=True)["input_ids"])
    trimmed = fit_pair(tokenizer, pair, longest - 1)
    assert trimmed["prompt"][: len(start)] == start
    assert len(trimmed["prompt"]) == len(start) + 4


def test_dpo_starts_at_ln2_against_the_starting_model_and_saves(tmp_path, pairs_file):
    from rro.train.dpo import dpo

    record = dpo(small(DpoConfig, pairs=[pairs_file], output=tmp_path / "dpo", max_length=1024))
    first = record["log_history"][0]
    # The reference is the starting model, so the first step's implicit rewards are 0 and the loss ln 2.
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert record["records"] == 6 and (tmp_path / "dpo" / "model.safetensors").exists()


def test_dpo_sft_weight_adds_the_chosen_side_nll(tmp_path, pairs_file):
    from rro.train.dpo import build_trainer

    trainer, _, _ = build_trainer(small(DpoConfig, pairs=[pairs_file], output=tmp_path / "dpo", sft_weight=0.5))
    assert trainer.args.loss_type == ["sigmoid", "sft"] and trainer.args.loss_weights == [1.0, 0.5]
    record = trainer.train()
    assert record.metrics["train_loss"] > math.log(2)  # ln 2 plus a (large, random-model) NLL term


def test_bad_pairs_and_configs_are_named(tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"prompt": [], "chosen": [{"role": "assistant", "content": "x"}]}) + "\n")
    with pytest.raises(ValueError, match="pairs.jsonl:1"):
        load_pairs(DpoConfig(pairs=[bad], output=tmp_path / "o"))
    with pytest.raises(ConfigError, match="beta"):
        load_config(DpoConfig, None, pairs=[bad], output=tmp_path / "o", beta=-1)
    with pytest.raises(ConfigError, match="learning_rte"):
        load_config(SftConfig, None, data=[bad], output=tmp_path / "o", learning_rte=1e-4)


def test_lora_adapters_are_merged_into_an_ordinary_checkpoint(tmp_path, experts_file):
    from transformers import AutoModelForCausalLM

    from rro.train.sft import sft

    record = sft(small(SftConfig, data=[experts_file], output=tmp_path / "lora", limit=2, lora=True, lora_r=4,
                       learning_rate=1e-2))
    assert record["config"]["lora"] is True
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    assert not any("lora" in name for name, _ in trained.named_parameters())


def test_dpo_pairs_sample_is_a_seeded_spread_sample_in_file_order(tmp_path):
    import json

    from rro.config import DpoConfig
    from rro.train.dpo import load_pairs

    pairs = tmp_path / "pairs.jsonl"
    message = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    pairs.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": str(i)}], "chosen": message("a"),
                                         "rejected": message("b")}) + "\n" for i in range(20)))
    def sample(**fields):
        return [int(p["prompt"][0]["content"]) for p in load_pairs(DpoConfig(pairs=[pairs], output=tmp_path / "o", **fields))]
    drawn = sample(pairs_sample=5)
    assert len(drawn) == 5 and drawn == sorted(drawn) and drawn != [0, 1, 2, 3, 4]
    assert sample(pairs_sample=5) == drawn and sample(pairs_sample=5, seed=1) != drawn
    assert sample(pairs_sample=50) == list(range(20))  # fewer pairs than asked: all of them
