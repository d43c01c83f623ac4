"""LLM access: `LLMClient` (retries, validated JSON output) and the embedded llama.cpp server."""

from synthloop.tools.llm.client import (
    CallStats,
    LLMClient,
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMSettings,
    LLMUnavailableError,
    image_part,
    user_message,
)
from synthloop.tools.llm.local_server import (
    LocalLlamaServer,
    LocalServerError,
    client_from_config,
    default_gguf_path,
    get_local_server,
)

__all__ = [
    "CallStats",
    "LLMClient",
    "LLMError",
    "LLMOutputError",
    "LLMRequestError",
    "LLMSettings",
    "LLMUnavailableError",
    "LocalLlamaServer",
    "LocalServerError",
    "client_from_config",
    "default_gguf_path",
    "get_local_server",
    "image_part",
    "user_message",
]
