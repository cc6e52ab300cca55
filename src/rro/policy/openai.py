"""Any OpenAI-compatible chat server as a policy: vLLM, SGLang, llama.cpp's server, ...

Requests go out concurrently from a bounded thread pool, one per conversation asking for its `n`
completions at once (`n` in the request): a server that honours it (vLLM's) samples them from one
prefill. A server that returns fewer choices (llama.cpp's returns one) gets the missing ones asked
for separately, one request each. The `openai` client retries transient failures (connection errors, 429, 5xx) with
exponential backoff; a server that stays unreachable is a `PolicyError` naming its address.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai

from rro.policy.base import Completion, PolicyError, Seeds, sample_seeds


class OpenAIPolicy:
    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str = "not-needed",
        max_concurrency: int = 16,
        max_retries: int = 4,
        timeout_s: float = 600.0,
        stop: tuple[str, ...] = ("\nObservation:",),
    ):
        self.name = model
        self.base_url = base_url
        self.stop = list(stop)
        self.max_concurrency = max_concurrency
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout_s)

    def _request(self, messages: list[dict[str, str]], n: int, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int | None) -> list[Completion]:
        """Up to `n` completions of one conversation from one request (fewer when the server ignores `n`)."""
        try:
            response = self.client.chat.completions.create(
                model=self.name,
                messages=messages,
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                seed=seed,
                stop=self.stop,
            )
        except openai.APIConnectionError as err:
            raise PolicyError(f"cannot reach the model server at {self.base_url}: {err}") from None
        except openai.APIStatusError as err:
            raise PolicyError(f"the model server at {self.base_url} answered {err.status_code}: {err.message}") from None
        texts = [(choice.message.content or "").strip() for choice in response.choices[:n]]
        usage = response.usage
        generated = split_tokens(usage.completion_tokens if usage else 0, texts)
        prompt_tokens = usage.prompt_tokens if usage else 0
        return [Completion(text, tokens, prompt_tokens) for text, tokens in zip(texts, generated)]

    def _completions(self, messages: list[dict[str, str]], n: int, temperature: float, top_p: float,
                     max_new_tokens: int, seeds: list[int] | None, pool: ThreadPoolExecutor) -> list[Completion]:
        # Servers take 31- or 32-bit seeds. One request with `n` samples all its choices from the
        # first completion's seed; a follow-up request k uses completion k's own.
        seed_of = (lambda k: None) if seeds is None else (lambda k: seeds[k] % (2**31 - 1))
        completions = self._request(messages, n, temperature, top_p, max_new_tokens, seed_of(0))
        missing = n - len(completions)
        if missing > 0:  # the server ignored `n`: one request per missing completion
            more = [pool.submit(self._request, messages, 1, temperature, top_p, max_new_tokens, seed_of(n - missing + k))
                    for k in range(missing)]
            completions += [future.result()[0] for future in more]
        return completions

    def generate(
        self,
        conversations: list[list[dict[str, str]]],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: Seeds = None,
    ) -> list[list[Completion]]:
        seeds = sample_seeds(seed, len(conversations), n)
        # Two pools: a conversation's follow-up requests must not wait for slots held by the
        # first requests that are waiting for them.
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as first, \
                ThreadPoolExecutor(max_workers=self.max_concurrency) as follow_up:
            futures = [
                first.submit(self._completions, conversation, n, temperature, top_p, max_new_tokens,
                             None if seeds is None else seeds[i], follow_up)
                for i, conversation in enumerate(conversations)
            ]
            return [future.result() for future in futures]


def split_tokens(total: int, texts: list[str]) -> list[int]:
    """A request's generated tokens shared among its choices (the API reports only the sum).

    One choice takes all; several share it in proportion to their text length (at least one token
    each when there are enough), rounded so that the shares add up to the reported total.
    """
    if len(texts) <= 1:
        return [total] * len(texts)
    weights = [len(text) + 1 for text in texts]
    shares = [total * w // sum(weights) for w in weights]
    for k in sorted(range(len(texts)), key=lambda k: -(total * weights[k] % sum(weights)))[: total - sum(shares)]:
        shares[k] += 1
    return shares
