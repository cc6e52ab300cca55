"""The transformers backend with the tiny random model."""

from rro.policy.base import Completion

CONVERSATIONS = [
    [{"role": "user", "content": "Database: x\nQuestion: how many rows?"}],
    [{"role": "user", "content": "A much longer question, so that the prompts differ in length and need padding."}],
    [{"role": "user", "content": "Third."}],
]


def test_n_completions_per_conversation_in_order(tiny_policy):
    results = tiny_policy.generate(CONVERSATIONS, n=2, temperature=1.0, max_new_tokens=8, seed=3)
    assert [len(r) for r in results] == [2, 2, 2]
    for conversation, completions in zip(CONVERSATIONS, results):
        prompt_tokens = len(tiny_policy.render(conversation))
        for completion in completions:
            assert isinstance(completion, Completion)
            assert completion.prompt_tokens == prompt_tokens
            assert 1 <= completion.generated_tokens <= 8


def test_sampling_is_reproducible_under_a_seed(tiny_policy):
    first = tiny_policy.generate(CONVERSATIONS, n=2, temperature=1.0, max_new_tokens=8, seed=7)
    again = tiny_policy.generate(CONVERSATIONS, n=2, temperature=1.0, max_new_tokens=8, seed=7)
    other = tiny_policy.generate(CONVERSATIONS, n=2, temperature=1.0, max_new_tokens=8, seed=8)
    assert first == again
    assert first != other


def test_batching_does_not_change_greedy_results(tiny_policy):
    batched = tiny_policy.generate(CONVERSATIONS, max_new_tokens=8)
    saved = tiny_policy.max_batch_size
    try:
        tiny_policy.max_batch_size = 1
        one_by_one = tiny_policy.generate(CONVERSATIONS, max_new_tokens=8)
    finally:
        tiny_policy.max_batch_size = saved
    assert [r[0].text for r in batched] == [r[0].text for r in one_by_one]


def test_seeded_samples_do_not_depend_on_batching(tiny_policy):
    """Per-row seeds: a completion depends on its own seed and prompt, not on its batch."""
    seeds = [11, 22, 33]
    batched = tiny_policy.generate(CONVERSATIONS, n=2, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=seeds)
    saved = tiny_policy.max_batch_size
    try:
        tiny_policy.max_batch_size = 1
        one_by_one = tiny_policy.generate(CONVERSATIONS, n=2, temperature=1.0, top_p=0.9, max_new_tokens=12,
                                          seed=seeds)
    finally:
        tiny_policy.max_batch_size = saved
    alone = tiny_policy.generate(CONVERSATIONS[2:], n=2, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=[33])
    reordered = tiny_policy.generate(CONVERSATIONS[::-1], n=2, temperature=1.0, top_p=0.9, max_new_tokens=12,
                                     seed=seeds[::-1])
    assert batched == one_by_one
    assert alone == batched[2:]
    assert reordered == batched[::-1]
    texts = [c.text for row in batched for c in row]
    assert len(set(texts)) == len(texts)  # the samples really vary (T = 1 on a random model)


def test_batches_respect_row_and_token_bounds(tiny_policy):
    saved = tiny_policy.max_batch_size, tiny_policy.max_batch_tokens
    try:
        tiny_policy.max_batch_size, tiny_policy.max_batch_tokens = 3, 100
        jobs = [(k, [0] * length) for k, length in enumerate([10, 40, 5, 20, 30, 5, 5])]
        batches = tiny_policy._batches(jobs, max_new_tokens=10)
    finally:
        tiny_policy.max_batch_size, tiny_policy.max_batch_tokens = saved
    assert sorted(k for batch in batches for k, _ in batch) == list(range(7))
    for batch in batches:
        longest = max(len(ids) for _, ids in batch)
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * (longest + 10) <= 100)
        assert [len(ids) for _, ids in batch] == sorted((len(ids) for _, ids in batch), reverse=True)


def test_completion_ends_at_the_end_of_turn_token(tiny_policy):
    tokenizer = tiny_policy.tokenizer
    body = tokenizer("Action: submit", add_special_tokens=False)["input_ids"]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    junk = tokenizer("and more text", add_special_tokens=False)["input_ids"]
    completion = tiny_policy._completion(body + [end] + junk, prompt_tokens=5)
    assert completion.text == "Action: submit"
    assert completion.generated_tokens == len(body) + 1


def test_observation_written_by_the_model_is_cut(tiny_policy):
    tokenizer = tiny_policy.tokenizer
    ids = tokenizer("Thought: t\nAction: submit\nObservation:", add_special_tokens=False)["input_ids"]
    assert tiny_policy._completion(ids, prompt_tokens=1).text == "Thought: t\nAction: submit"


def test_dtype_choice():
    import torch

    from rro.policy.hf import pick_dtype

    assert pick_dtype("auto", "cuda") == torch.bfloat16
    assert pick_dtype("float32", "cpu") == torch.float32
    assert pick_dtype("auto", "cpu") in (torch.bfloat16, torch.float32)
