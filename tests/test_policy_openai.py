"""The OpenAI-compatible backend against a real server: llama.cpp's, serving the default model's GGUF."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from rro.cli import app
from rro.policy import PolicyError
from rro.policy.openai import OpenAIPolicy

CONVERSATIONS = [
    [{"role": "user", "content": "Write one SQL query that counts the rows of table t."}],
    [{"role": "user", "content": "Say hello."}],
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(rro_home):
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        if os.environ.get("RRO_REQUIRE_LLAMA_SERVER") == "1":
            pytest.fail("RRO_REQUIRE_LLAMA_SERVER=1 but llama-cpp-python[server] is not installed")
        pytest.skip("llama-cpp-python[server] is not installed (pip install 'llama-cpp-python[server]')")
    from rro.policy.models import gguf_path

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2-135m")),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2-135m"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/models", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("llama.cpp server did not start within 120 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_completions_from_a_real_server(llama_server):
    policy = OpenAIPolicy("smollm2-135m", base_url=llama_server, max_concurrency=4)
    results = policy.generate(CONVERSATIONS, n=2, temperature=1.0, max_new_tokens=16, seed=1)
    assert [len(r) for r in results] == [2, 2]
    for completions in results:
        for completion in completions:
            assert 1 <= completion.generated_tokens <= 16 and completion.prompt_tokens > 5
    greedy = policy.generate(CONVERSATIONS[:1], n=2, max_new_tokens=16)
    assert greedy[0][0].text == greedy[0][1].text  # temperature 0 is deterministic


def test_unreachable_server_is_a_clear_error():
    policy = OpenAIPolicy("m", base_url=f"http://127.0.0.1:{_free_port()}/v1", max_retries=1, timeout_s=5)
    with pytest.raises(PolicyError, match="cannot reach the model server"):
        policy.generate(CONVERSATIONS[:1], max_new_tokens=4)


def test_rro_eval_through_the_server(tmp_path, llama_server):
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, [
        "eval", "--model", "smollm2-135m", "--policy-backend", "openai", "--base-url", llama_server,
        "--limit", "2", "--max-steps", "2", "--max-new-tokens", "32", "-o", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == 2 and summary["generated_tokens"] > 0


class _ChatStub:
    """A minimal OpenAI-compatible chat server that records requests; it honours `n` or, like
    llama.cpp's server, answers every request with one choice."""

    def __init__(self, honours_n: bool):
        import http.server
        import threading

        self.requests: list[dict] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                choices = body.get("n", 1) if honours_n else 1
                prompt = " ".join(m["content"] for m in body["messages"])
                answer = {
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": k, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"Action: answer {k} of {prompt}"}}
                                for k in range(choices)],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 4 * choices,
                              "total_tokens": len(prompt.split()) + 4 * choices},
                }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("honours_n", [True, False])
def test_n_completions_in_one_request_or_one_each(honours_n):
    stub = _ChatStub(honours_n)
    try:
        policy = OpenAIPolicy("m", base_url=stub.url, max_concurrency=2)
        results = policy.generate(CONVERSATIONS, n=3, temperature=1.0, max_new_tokens=8, seed=5)
    finally:
        stub.close()
    assert [len(r) for r in results] == [3, 3]
    for conversation, completions in zip(CONVERSATIONS, results):
        assert all(c.text.endswith(conversation[0]["content"]) for c in completions)  # each to its own conversation
        assert all(c.prompt_tokens == len(conversation[0]["content"].split()) for c in completions)
        assert sum(c.generated_tokens for c in completions) == 12  # 4 per choice, as the server reported
    if honours_n:  # one request per conversation, asking for all three
        assert sorted(r["n"] for r in stub.requests) == [3, 3]
        assert [c.text.split()[2] for c in results[0]] == ["0", "1", "2"]
    else:  # the first asks for three, gets one; the two missing ones are asked for one by one
        assert sorted(r["n"] for r in stub.requests) == [1, 1, 1, 1, 3, 3]
        assert len({r["seed"] for r in stub.requests}) == 6  # every request samples differently
