"""Any OpenAI-compatible chat server as a policy: vLLM, SGLang, llama.cpp's server, ...

Requests go out concurrently from a bounded thread pool, one per completion (not every server
honours `n`). The `openai` client retries transient failures (connection errors, 429, 5xx) with
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

    def _one(self, messages: list[dict[str, str]], temperature: float, top_p: float, max_new_tokens: int,
             seed: int | None) -> Completion:
        try:
            response = self.client.chat.completions.create(
                model=self.name,
                messages=messages,
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
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=(choice.message.content or "").strip(),
            generated_tokens=usage.completion_tokens if usage else 0,
            prompt_tokens=usage.prompt_tokens if usage else 0,
        )

    def generate(
        self,
        conversations: list[list[dict[str, str]]],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: Seeds = None,
    ) -> list[list[Completion]]:
        jobs = [(i, j) for i in range(len(conversations)) for j in range(n)]
        seeds = sample_seeds(seed, len(conversations), n)
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            futures = [
                # Servers take 31- or 32-bit seeds.
                pool.submit(self._one, conversations[i], temperature, top_p, max_new_tokens,
                            None if seeds is None else seeds[i][j] % (2**31 - 1))
                for i, j in jobs
            ]
            results = [future.result() for future in futures]
        return [results[i * n : (i + 1) * n] for i in range(len(conversations))]
