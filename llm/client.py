"""One OpenAI-compatible chat client for everything in roboforge that asks a language model
(task generation, sub-goal planning, curriculum interestingness).

It is a thin layer over the official ``openai`` SDK (``OpenAI(base_url=..., api_key=...,
max_retries=..., timeout=...)``), which speaks ``POST {base_url}/chat/completions`` to OpenAI,
vLLM, Ollama (``/v1``), llama.cpp's server, LM Studio and most proxies. What this layer adds:
configuration from roboforge's environment variables, token totals across calls, a deadline on
the whole answer, and errors that say what went wrong in one line.

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
timeout (s)         ROBOFORGE_LLM_TIMEOUT           60, for the whole answer
retries             ROBOFORGE_LLM_MAX_RETRIES       4
==================  ==============================  =========================================

Examples: Ollama ``ROBOFORGE_LLM_BASE_URL=http://localhost:11434/v1 ROBOFORGE_LLM_MODEL=qwen2.5-coder``;
vLLM ``http://localhost:8000/v1``; llama.cpp server ``http://localhost:8080/v1``.

Retries are the SDK's: 408, 409, 429 and 5xx answers, connection errors and timeouts are retried
with exponential backoff and jitter, honouring ``Retry-After`` (up to two minutes). Other 4xx
answers fail at once with the server's message. Token use is read from each answer's ``usage``
and summed on the client (``client.usage``).

This module imports nothing from roboforge, so any layer (planners, policies, generation,
curriculum) may use it.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import httpx2  # the SDK's HTTP library (openai >= 3): the whole-answer deadline plugs into it
import openai

# A key the SDK insists on even where the server wants none (Ollama, vLLM, llama.cpp ignore it).
NO_KEY = "no-key"


class LLMError(RuntimeError):
    """The model could not be asked, or its answer was unusable."""


class LLMConfigError(LLMError):
    """No endpoint or model configured, or a setting out of range."""


class LLMUnreachable(LLMError):
    """Nothing answered at the endpoint (connection refused, unknown host, TLS failure): a
    transport failure, not the model's mistake."""


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
    attempts: int                 # 1 + the retries it took
    raw: dict = field(repr=False, default_factory=dict)  # the answer's JSON


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
    timeout_s: float = 60.0       # for the whole answer of one attempt, not per socket read
    max_retries: int = 4

    def __post_init__(self):
        if not self.timeout_s > 0:
            raise LLMConfigError(f"timeout_s={self.timeout_s} is invalid; allowed: a positive number of seconds")
        if self.max_retries < 0:
            raise LLMConfigError(f"max_retries={self.max_retries} is invalid; allowed: 0 or more")

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
        kw = {"timeout_s": _number("ROBOFORGE_LLM_TIMEOUT", float, 60.0),
              "max_retries": _number("ROBOFORGE_LLM_MAX_RETRIES", int, 4)}
        kw.update(overrides)
        return cls(base_url=normalize_base_url(base), model=model, api_key=key, **kw)


def _number(name: str, kind: type, default):
    value = _env(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = "a whole number" if kind is int else "a number"
        raise LLMConfigError(f"{name}={value} is invalid; allowed: {allowed}") from None


def normalize_base_url(url: str) -> str:
    """Strip a trailing slash; a bare host (no path) gets the conventional ``/v1``."""
    url = url.rstrip("/")
    if urllib.parse.urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(self, inner, deadline: float, timeout_s: float, request: httpx2.Request):
        self._inner, self._deadline, self._timeout_s, self._request = inner, deadline, timeout_s, request

    def __iter__(self):
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise httpx2.ReadTimeout(f"answer not complete within {self._timeout_s:g} s", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _WholeAnswerDeadline(httpx2.BaseTransport):
    """The SDK's timeout bounds each socket operation, so a server trickling bytes could hold a
    call forever. This transport ends an answer whose body is not complete ``timeout_s`` after its
    request was sent, with the HTTP library's own timeout error, so the SDK retries it like any
    other timeout."""

    def __init__(self, timeout_s: float):
        self._inner = httpx2.HTTPTransport()
        self._timeout_s = timeout_s

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self._timeout_s
        response = self._inner.handle_request(request)
        response.stream = _DeadlineStream(response.stream, deadline, self._timeout_s, request)
        return response

    def close(self) -> None:
        self._inner.close()


class LLMClient:
    """``client.chat(messages)`` -> :class:`ChatResponse`. Thread-safe; token use accumulates in
    ``client.usage`` and ``client.calls``."""

    def __init__(self, config: LLMConfig | None = None, **overrides):
        self.config = config or LLMConfig.from_env(**overrides)
        self.usage = TokenUsage()
        self.calls = 0
        self._lock = threading.Lock()
        cfg = self.config
        self._openai = openai.OpenAI(
            base_url=cfg.base_url, api_key=cfg.api_key or NO_KEY, max_retries=cfg.max_retries,
            timeout=cfg.timeout_s,
            http_client=openai.DefaultHttpxClient(transport=_WholeAnswerDeadline(cfg.timeout_s)))

    def chat(self, messages: list[dict], *, temperature: float | None = None, max_tokens: int | None = None,
             stop: list[str] | None = None, **extra) -> ChatResponse:
        """One chat completion. ``messages`` are ``{"role": ..., "content": ...}`` dicts; ``extra``
        are further ``chat.completions.create`` arguments (e.g. ``response_format``, ``seed``)."""
        kw = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens), ("stop", stop))
              if v is not None}
        try:
            raw = self._openai.chat.completions.with_raw_response.create(
                model=self.config.model, messages=messages, **kw, **extra)
        except openai.OpenAIError as err:
            raise self._error(err) from None
        body = raw.http_response.text
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise LLMError(f"the server's answer is not JSON: {body[:200]!r}") from None
        completion = raw.parse()
        try:
            choice = completion.choices[0]
            text = choice.message.content or ""
        except (IndexError, AttributeError, TypeError):
            raise LLMError(f"malformed chat completion (no choices[0].message): {body[:300]}") from None
        u = completion.usage
        prompt = int(getattr(u, "prompt_tokens", 0) or 0)
        answer = int(getattr(u, "completion_tokens", 0) or 0)
        usage = TokenUsage(prompt, answer, int(getattr(u, "total_tokens", 0) or prompt + answer))
        with self._lock:
            self.usage = self.usage + usage
            self.calls += 1
        return ChatResponse(text=text, model=completion.model or self.config.model,
                            finish_reason=choice.finish_reason, usage=usage, attempts=raw.retries_taken + 1,
                            raw=data)

    def complete(self, prompt: str, system: str | None = None, **kw) -> str:
        """Convenience: one user message (and an optional system message) -> the reply text."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.chat(messages, **kw).text

    def _error(self, err: openai.OpenAIError) -> LLMError:
        """The SDK's exception as one of ours, saying how many attempts were made (the SDK stamps
        each request with its retry count)."""
        cfg = self.config
        response = getattr(err, "response", None)
        request = getattr(err, "request", None) or (response.request if response is not None else None)
        retries = int(request.headers.get("x-stainless-retry-count", 0)) if request is not None else 0
        tries = f" (after {retries + 1} attempts)" if retries else ""
        if isinstance(err, openai.APITimeoutError):
            return LLMTimeout(f"no answer from {cfg.base_url} within {cfg.timeout_s:g} s{tries}")
        if isinstance(err, openai.APIStatusError):
            body = err.body
            if isinstance(body, dict) and body.get("message"):
                message = str(body["message"])
            elif isinstance(body, str) and body:
                message = body
            else:
                message = err.message
            return LLMHTTPError(err.status_code, f"{message}{tries}")
        if isinstance(err, openai.APIConnectionError):
            return LLMUnreachable(f"cannot reach {cfg.base_url}: {err.__cause__ or err}{tries}")
        return LLMError(f"{type(err).__name__}: {err}")
