"""One OpenAI-compatible chat client for everything in roboforge that asks a language model
(task generation, sub-goal planning, curriculum interestingness).

It speaks ``POST {base_url}/chat/completions``, which OpenAI, vLLM, Ollama (``/v1``), llama.cpp's
server, LM Studio and most proxies serve. Standard library only (``urllib``).

Configuration, first match wins (keyword arguments beat environment variables):

==================  ==============================  =========================================
setting             environment                     default
==================  ==============================  =========================================
base URL            ROBOFORGE_LLM_BASE_URL,         https://api.openai.com/v1 when an OpenAI
                    OPENAI_BASE_URL                 key is set, else none (error)
model               ROBOFORGE_LLM_MODEL,            none (error)
                    OPENAI_MODEL
API key             ROBOFORGE_LLM_API_KEY,          none (local servers need none)
                    OPENAI_API_KEY
timeout (s)         ROBOFORGE_LLM_TIMEOUT           60
retries             ROBOFORGE_LLM_MAX_RETRIES       4
==================  ==============================  =========================================

Examples: Ollama ``ROBOFORGE_LLM_BASE_URL=http://localhost:11434/v1 ROBOFORGE_LLM_MODEL=qwen2.5-coder``;
vLLM ``http://localhost:8000/v1``; llama.cpp server ``http://localhost:8080/v1``.

Retries: 429 and 5xx answers, connection errors and timeouts are retried with exponential
backoff and jitter; a ``Retry-After`` header (seconds or an HTTP date) is honoured, capped at
``max_backoff_s``. Other 4xx answers fail at once with the server's message. Token use is read
from each answer's ``usage`` and summed on the client (``client.usage``).
"""
from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class LLMError(RuntimeError):
    """The model could not be asked, or its answer was unusable."""


class LLMConfigError(LLMError):
    """No endpoint or model configured."""


class LLMTimeout(LLMError):
    """No complete answer within the timeout, after every retry."""


class LLMHTTPError(LLMError):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(self.prompt_tokens + other.prompt_tokens,
                          self.completion_tokens + other.completion_tokens,
                          self.total_tokens + other.total_tokens)

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}


@dataclass
class ChatResponse:
    text: str
    model: str
    finish_reason: str | None
    usage: TokenUsage
    attempts: int
    raw: dict = field(repr=False, default_factory=dict)


def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


@dataclass
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0        # first retry waits about this long, doubling each time
    max_backoff_s: float = 60.0   # cap on any single wait, Retry-After included

    @classmethod
    def from_env(cls, **overrides) -> "LLMConfig":
        """Read the environment (see the module docstring); keyword arguments override it."""
        key = overrides.pop("api_key", None) or _env("ROBOFORGE_LLM_API_KEY", "OPENAI_API_KEY")
        base = overrides.pop("base_url", None) or _env("ROBOFORGE_LLM_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE")
        if not base and _env("OPENAI_API_KEY"):
            base = "https://api.openai.com/v1"
        model = overrides.pop("model", None) or _env("ROBOFORGE_LLM_MODEL", "OPENAI_MODEL")
        if not base or not model:
            missing = " and ".join(n for n, v in (("ROBOFORGE_LLM_BASE_URL", base), ("ROBOFORGE_LLM_MODEL", model))
                                   if not v)
            raise LLMConfigError(
                f"no LLM configured: set {missing} (an OpenAI-compatible endpoint, e.g. "
                "http://localhost:11434/v1 for Ollama, http://localhost:8000/v1 for vLLM, "
                "http://localhost:8080/v1 for llama.cpp) and ROBOFORGE_LLM_API_KEY if it needs one")
        kw = {"timeout_s": float(_env("ROBOFORGE_LLM_TIMEOUT") or 60.0),
              "max_retries": int(_env("ROBOFORGE_LLM_MAX_RETRIES") or 4)}
        kw.update(overrides)
        return cls(base_url=normalize_base_url(base), model=model, api_key=key, **kw)


def normalize_base_url(url: str) -> str:
    """Strip a trailing slash; a bare host (no path) gets the conventional ``/v1``."""
    url = url.rstrip("/")
    if urllib.parse.urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


class LLMClient:
    """``client.chat(messages)`` -> :class:`ChatResponse`. Thread-safe; token use accumulates in
    ``client.usage`` and ``client.calls``."""

    def __init__(self, config: LLMConfig | None = None, **overrides):
        self.config = config or LLMConfig.from_env(**overrides)
        self.usage = TokenUsage()
        self.calls = 0
        self._lock = threading.Lock()

    def chat(self, messages: list[dict], *, temperature: float | None = None, max_tokens: int | None = None,
             stop: list[str] | None = None, **extra) -> ChatResponse:
        """One chat completion. ``messages`` are ``{"role": ..., "content": ...}`` dicts; ``extra``
        goes into the request body as-is (e.g. ``response_format``, ``seed``)."""
        body = {"model": self.config.model, "messages": messages, **extra}
        for k, v in (("temperature", temperature), ("max_tokens", max_tokens), ("stop", stop)):
            if v is not None:
                body[k] = v
        data, attempts = self._post("/chat/completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LLMError(f"malformed chat completion (no choices[0].message): {str(data)[:300]}") from None
        u = data.get("usage") or {}
        prompt, completion = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
        usage = TokenUsage(prompt, completion, int(u.get("total_tokens") or prompt + completion))
        with self._lock:
            self.usage = self.usage + usage
            self.calls += 1
        return ChatResponse(text=text, model=data.get("model", self.config.model),
                            finish_reason=choice.get("finish_reason"), usage=usage, attempts=attempts, raw=data)

    def complete(self, prompt: str, system: str | None = None, **kw) -> str:
        """Convenience: one user message (and an optional system message) -> the reply text."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.chat(messages, **kw).text

    # -- transport ---------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> tuple[dict, int]:
        cfg = self.config
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        last: Exception | None = None
        for attempt in range(cfg.max_retries + 1):
            wait = None
            try:
                req = urllib.request.Request(cfg.base_url + path, data=payload, headers=headers, method="POST")
                return self._send(req), attempt + 1
            except urllib.error.HTTPError as err:
                message = _error_message(err)
                if err.code not in RETRY_STATUS:
                    raise LLMHTTPError(err.code, message) from None
                last = LLMHTTPError(err.code, message)
                wait = _retry_after(err.headers.get("Retry-After"))
            except (TimeoutError, socket.timeout) as err:
                last = LLMTimeout(f"no answer from {cfg.base_url} within {cfg.timeout_s:g} s ({err or 'timed out'})")
            except urllib.error.URLError as err:
                if isinstance(err.reason, (TimeoutError, socket.timeout)):
                    last = LLMTimeout(f"no answer from {cfg.base_url} within {cfg.timeout_s:g} s")
                else:
                    last = LLMError(f"cannot reach {cfg.base_url}: {err.reason}")
            except (ConnectionError, http.client.HTTPException) as err:
                last = LLMError(f"connection to {cfg.base_url} failed: {err!r}")
            if attempt == cfg.max_retries:
                break
            if wait is None:
                wait = cfg.backoff_s * 2 ** attempt * random.uniform(0.5, 1.0)
            time.sleep(min(wait, cfg.max_backoff_s))
        tries = f" (after {cfg.max_retries + 1} attempts)"
        if isinstance(last, LLMHTTPError):
            raise LLMHTTPError(last.status, str(last).split(": ", 1)[-1] + tries)
        raise type(last)(f"{last}{tries}")

    def _send(self, req: urllib.request.Request) -> dict:
        """Send and read the whole answer within ``timeout_s`` in total (urllib's own timeout is
        per socket operation, so a server trickling bytes could otherwise hold us forever)."""
        deadline = time.monotonic() + self.config.timeout_s
        with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
            chunks = []
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError("answer not complete within the timeout")
                chunk = resp.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise LLMError(f"the server's answer is not JSON: {raw[:200]!r}") from None


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        body = err.read()[:2000].decode(errors="replace")
        error = json.loads(body).get("error")
        return str(error.get("message") if isinstance(error, dict) else error or body)
    except Exception:  # noqa: BLE001  (a best-effort message)
        return str(err.reason)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None
