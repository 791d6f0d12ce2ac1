"""The one OpenAI-compatible chat client (see :mod:`llm.client`). Imports nothing from roboforge."""
from llm.client import (ChatResponse, LLMClient, LLMConfig, LLMConfigError, LLMError, LLMHTTPError, LLMTimeout,
                        LLMUnreachable, TokenUsage, normalize_base_url)

__all__ = ["ChatResponse", "LLMClient", "LLMConfig", "LLMConfigError", "LLMError", "LLMHTTPError", "LLMTimeout",
           "LLMUnreachable", "TokenUsage", "normalize_base_url"]
