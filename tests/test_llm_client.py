"""The OpenAI-compatible chat client (llm/client.py, on the openai SDK) against a scripted local server.

``StubLLM`` (also used by tests/test_generation_llm.py) is an OpenAI-compatible server on
127.0.0.1 (http.server in a thread).

Each POST to /v1/chat/completions takes the next scripted reply:
- a string: a 200 chat completion with that content (and a ``usage`` block);
- ``("status", code, headers, body)``: that HTTP status (e.g. 429 with Retry-After);
- ``("slow", seconds, content)``: wait, then answer (to run past a client timeout);
- ``("raw", code, bytes)``: a raw body (e.g. malformed JSON);
- ``("trickle", seconds, content)``: a 200 answer whose body arrives a few bytes at a time, with
  ``seconds`` between pieces (each read is quick, the whole answer is not).
A callable reply gets the request body and returns one of the above. When the script runs out,
the last reply repeats. Every request body is kept in ``server.requests`` (for prompt checks).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubLLM:
    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(self.headers)  # case-insensitive .get
                    reply = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                if callable(reply):
                    reply = reply(body)
                try:
                    stub._answer(self, reply, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _answer(h, reply, body):
        if isinstance(reply, tuple) and reply[0] == "slow":
            time.sleep(reply[1])
            reply = reply[2]
        if isinstance(reply, tuple) and reply[0] == "status":
            _, code, headers, payload = reply
            data = json.dumps(payload).encode()
            h.send_response(code)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        if isinstance(reply, tuple) and reply[0] == "raw":
            _, code, data = reply
            h.send_response(code)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        trickle = None
        if isinstance(reply, tuple) and reply[0] == "trickle":
            _, trickle, reply = reply
        prompt_chars = sum(len(m.get("content", "")) for m in body.get("messages", []))
        data = json.dumps({
            "id": "chatcmpl-test", "object": "chat.completion", "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(reply) // 4,
                      "total_tokens": prompt_chars // 4 + len(reply) // 4},
        }).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if trickle is None:
            h.wfile.write(data)
            return
        for i in range(0, len(data), 16):
            h.wfile.write(data[i:i + 16])
            h.wfile.flush()
            time.sleep(trickle)


# -- the client against the stub ----------------------------------------------------------------

import pytest  # noqa: E402

from llm import (LLMClient, LLMConfig, LLMConfigError, LLMError, LLMHTTPError, LLMTimeout,  # noqa: E402
                 normalize_base_url)


def client_for(server, **kw) -> LLMClient:
    cfg = dict(base_url=server.base_url, model="stub-model", api_key="sk-test", timeout_s=2.0, max_retries=3)
    cfg.update(kw)
    return LLMClient(LLMConfig(**cfg))


def test_chat_returns_text_and_counts_tokens():
    with StubLLM(["hello there"]) as server:
        client = client_for(server)
        r1 = client.chat([{"role": "user", "content": "x" * 40}], temperature=0.2, max_tokens=50)
        r2 = client.complete("y" * 80, system="be brief")
    assert r1.text == "hello there" and r2 == "hello there"
    assert r1.usage.prompt_tokens == 10 and r1.attempts == 1 and r1.finish_reason == "stop"
    assert client.calls == 2
    assert client.usage.total_tokens == r1.usage.total_tokens + (80 + 8) // 4 + len("hello there") // 4
    req = server.requests[0]
    assert req["model"] == "stub-model" and req["temperature"] == 0.2 and req["max_tokens"] == 50
    assert server.headers[0].get("Authorization") == "Bearer sk-test"
    assert server.requests[1]["messages"][0] == {"role": "system", "content": "be brief"}


def test_429_is_retried_honouring_retry_after():
    busy = ("status", 429, {"Retry-After": "1"}, {"error": {"message": "rate limited"}})
    with StubLLM([busy, "finally"]) as server:
        client = client_for(server)
        t0 = time.monotonic()
        r = client.chat([{"role": "user", "content": "hi"}])
        waited = time.monotonic() - t0
    assert r.text == "finally" and r.attempts == 2
    assert waited >= 0.95, "Retry-After: 1 was not honoured"
    assert client.calls == 1  # failed attempts are not counted as calls or tokens


def test_5xx_backs_off_then_gives_up_with_the_server_message():
    down = ("status", 503, {}, {"error": {"message": "overloaded"}})
    with StubLLM([down]) as server:
        client = client_for(server, max_retries=2)
        with pytest.raises(LLMHTTPError, match="overloaded.*after 3 attempts") as err:
            client.chat([{"role": "user", "content": "hi"}])
    assert err.value.status == 503 and len(server.requests) == 3


def test_4xx_fails_at_once():
    bad = ("status", 401, {}, {"error": {"message": "invalid api key"}})
    with StubLLM([bad, "never"]) as server:
        with pytest.raises(LLMHTTPError, match="invalid api key"):
            client_for(server).chat([{"role": "user", "content": "hi"}])
    assert len(server.requests) == 1


def test_slow_answer_times_out_after_retries():
    with StubLLM([("slow", 1.5, "too late")]) as server:
        client = client_for(server, timeout_s=0.3, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(LLMTimeout, match="within 0.3 s.*after 2 attempts"):
            client.chat([{"role": "user", "content": "hi"}])
    assert time.monotonic() - t0 < 3.0
    assert len(server.requests) == 2


def test_a_trickling_answer_meets_the_whole_answer_deadline():
    # ~20 pieces 0.1 s apart: every socket read is fast, the answer takes ~2 s in all
    with StubLLM([("trickle", 0.1, "x" * 100)]) as server:
        client = client_for(server, timeout_s=0.5, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(LLMTimeout, match="within 0.5 s.*after 2 attempts"):
            client.chat([{"role": "user", "content": "hi"}])
    assert time.monotonic() - t0 < 3.5
    assert len(server.requests) == 2 and client.calls == 0


def test_malformed_answers_raise_llm_error():
    with StubLLM([("raw", 200, b"<html>not json</html>"), ("raw", 200, b'{"choices": []}')]) as server:
        client = client_for(server)
        with pytest.raises(LLMError, match="not JSON"):
            client.chat([{"role": "user", "content": "hi"}])
        with pytest.raises(LLMError, match="malformed chat completion"):
            client.chat([{"role": "user", "content": "hi"}])


def test_config_from_environment(monkeypatch):
    for var in ("ROBOFORGE_LLM_BASE_URL", "ROBOFORGE_LLM_MODEL", "ROBOFORGE_LLM_API_KEY", "OPENAI_API_KEY",
                "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_MODEL", "ROBOFORGE_LLM_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(LLMConfigError, match="ROBOFORGE_LLM_BASE_URL and ROBOFORGE_LLM_MODEL"):
        LLMConfig.from_env()
    monkeypatch.setenv("ROBOFORGE_LLM_BASE_URL", "http://localhost:11434")
    monkeypatch.setenv("ROBOFORGE_LLM_MODEL", "qwen2.5-coder")
    monkeypatch.setenv("ROBOFORGE_LLM_TIMEOUT", "7")
    cfg = LLMConfig.from_env()
    assert cfg.base_url == "http://localhost:11434/v1" and cfg.model == "qwen2.5-coder"
    assert cfg.timeout_s == 7.0 and cfg.api_key is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.delenv("ROBOFORGE_LLM_BASE_URL")
    assert LLMConfig.from_env().base_url == "https://api.openai.com/v1"
    assert LLMConfig.from_env(model="other", timeout_s=1).model == "other"
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    monkeypatch.setenv("ROBOFORGE_LLM_TIMEOUT", "soon")
    with pytest.raises(LLMConfigError, match="ROBOFORGE_LLM_TIMEOUT=soon is invalid; allowed: a number"):
        LLMConfig.from_env()
