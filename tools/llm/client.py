"""`LLMClient`: the one client every LLM/VLM call goes through.

It wraps the `openai` client (pointed at any OpenAI-compatible endpoint: the embedded llama.cpp server, a
vLLM/Ollama server, OpenAI itself) and adds what every caller needs:

1. Transport retries with tenacity: exponential backoff with small waits, `max_retries + 1` attempts in all,
   only on connection errors, timeouts, HTTP 429 and HTTP 5xx. The openai client's own retries are off, so
   the attempt count is exactly ours.
2. Structured output: `complete_json` sends a pydantic schema in the form the endpoint understands
   (`structured_output`), validates the answer with pydantic and re-asks with the validation error when the
   answer is invalid, at most `max_reasks` times, then raises `LLMOutputError`.
3. Errors a user can act on (endpoint unreachable, key rejected, model unknown) become
   `LLMUnavailableError` with one message that names the endpoint.

Vision calls use the same methods: `user_message(text, [png_bytes, ...])` builds a user message whose
content is a text part plus `image_url` parts holding base64 data URLs (OpenAI's vision message format).

The client knows nothing about the agent's config classes (tools never import agent):
`LLMClient.from_settings` takes any object with the fields of `LLMSettings`, which
`synthloop.agent.config.LLMConfig` has.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
Message = dict[str, Any]

STRUCTURED_OUTPUT_MODES = ("json_object_schema", "json_schema", "json_object", "none")


class LLMError(RuntimeError):
    """Base class of every error raised by `LLMClient`."""


class LLMUnavailableError(LLMError):
    """The endpoint cannot be used: unreachable after retries, key rejected, model unknown, 5xx."""


class LLMRequestError(LLMError):
    """The endpoint rejected the request itself (HTTP 4xx other than auth/not-found/429): a bug or an
    unsupported option, not something a retry fixes."""


class LLMOutputError(LLMError):
    """The model kept answering with output that does not validate against the schema."""

    def __init__(self, message: str, *, last_output: str = "", errors: str = "") -> None:
        super().__init__(message)
        self.last_output = last_output
        self.errors = errors


class LLMSettings(Protocol):
    """The fields `LLMClient.from_settings` reads (structurally satisfied by `agent.config.LLMConfig`)."""

    base_url: str | None
    model: str
    timeout_s: float
    max_retries: int
    max_reasks: int
    temperature: float
    structured_output: str

    def api_key(self) -> str: ...


@dataclass
class CallStats:
    """What the last `complete_*` call cost: HTTP attempts, re-asks, wall time, token usage."""

    attempts: int = 0
    reasks: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)


def _is_retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _json_text(content: str) -> str:
    """The JSON part of an answer: code fences stripped, else the outermost {...} when there is prose."""
    fenced = _FENCE.match(content)
    if fenced:
        return fenced.group(1)
    text = content.strip()
    if not text.startswith("{") and "{" in text and "}" in text:
        return text[text.index("{") : text.rindex("}") + 1]
    return text


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def image_part(data: bytes, *, mime: str = "image/png", detail: str | None = None) -> dict[str, Any]:
    """An OpenAI `image_url` content part carrying `data` (encoded image bytes) as a base64 data URL.

    `detail` ("low" | "high" | "auto") is sent only when given; servers that do not know it ignore it.
    """
    import base64

    url: dict[str, Any] = {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}
    if detail is not None:
        url["detail"] = detail
    return {"type": "image_url", "image_url": url}


def user_message(text: str, images: Sequence[bytes] = (), *, mime: str = "image/png") -> Message:
    """A user message: plain text, or (with images) a text part followed by one image part per image.

    The result goes into `complete_text` / `complete_json` like any other message, so vision calls get the
    same retries, timeouts and re-asks as text calls.
    """
    if not images:
        return {"role": "user", "content": text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.extend(image_part(data, mime=mime) for data in images)
    return {"role": "user", "content": parts}


class LLMClient:
    """Chat completions against one OpenAI-compatible endpoint, with retries and validated JSON output."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str = "not-needed",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        max_reasks: int = 2,
        temperature: float = 0.0,
        structured_output: str = "json_object_schema",
        extra_body: dict[str, Any] | None = None,
        retry_wait_s: tuple[float, float] = (0.25, 4.0),
    ) -> None:
        """Create a client; nothing is sent until the first call.

        `extra_body` is merged into every request body (e.g. `{"repeat_penalty": 1.1}` for llama.cpp);
        `retry_wait_s` bounds the exponential backoff between transport retries (first wait, longest wait).
        """
        if structured_output not in STRUCTURED_OUTPUT_MODES:
            raise ValueError(f"structured_output must be one of {STRUCTURED_OUTPUT_MODES}, not {structured_output!r}")
        if max_retries < 0 or max_reasks < 0:
            raise ValueError("max_retries and max_reasks must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_reasks = max_reasks
        self.temperature = temperature
        self.structured_output = structured_output
        self.extra_body = dict(extra_body or {})
        self.retry_wait_s = retry_wait_s
        self.last_stats = CallStats()
        self._api_key = api_key
        self._openai: openai.OpenAI | None = None

    @classmethod
    def from_settings(
        cls, settings: LLMSettings, *, base_url: str | None = None, extra_body: dict[str, Any] | None = None
    ) -> LLMClient:
        """Build a client from an `LLMConfig`-like object; `base_url` overrides `settings.base_url`."""
        url = base_url or settings.base_url
        if not url:
            raise ValueError("no base_url: use client_from_config() to start the embedded server")
        return cls(
            url,
            model=settings.model,
            api_key=settings.api_key(),
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            max_reasks=settings.max_reasks,
            temperature=settings.temperature,
            structured_output=settings.structured_output,
            extra_body=extra_body,
        )

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def _client(self) -> openai.OpenAI:
        if self._openai is None:
            import openai

            # max_retries=0: tenacity owns retries, so one logical call is exactly max_retries+1 requests.
            self._openai = openai.OpenAI(
                base_url=self.base_url, api_key=self._api_key, timeout=self.timeout_s, max_retries=0
            )
        return self._openai

    # -- public API -------------------------------------------------------------------------------------

    def complete_text(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """One chat completion; returns the answer text ('' when the model returned none)."""
        self.last_stats = CallStats()
        start = time.perf_counter()
        try:
            return self._chat(list(messages), max_tokens=max_tokens, temperature=temperature, extra=extra)
        finally:
            self.last_stats.seconds = time.perf_counter() - start

    def complete_json(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        max_tokens: int,
        temperature: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> T:
        """Ask for one JSON object matching `schema` and return it validated.

        The schema goes to the endpoint as configured by `structured_output`; for modes the server does not
        enforce ("json_object", "none") it is also described in a system message. An answer that fails to
        parse or validate is sent back with the error, up to `max_reasks` times; then `LLMOutputError`.
        """
        self.last_stats = CallStats()
        start = time.perf_counter()
        try:
            return self._complete_json(list(messages), schema, max_tokens, temperature, extra)
        finally:
            self.last_stats.seconds = time.perf_counter() - start

    # -- internals --------------------------------------------------------------------------------------

    def _complete_json(
        self,
        messages: list[Message],
        schema: type[T],
        max_tokens: int,
        temperature: float | None,
        extra: dict[str, Any] | None,
    ) -> T:
        json_schema = schema.model_json_schema()
        request_extra = dict(extra or {})
        mode = self.structured_output
        if mode == "json_object_schema":
            request_extra["response_format"] = {"type": "json_object", "schema": json_schema}
        elif mode == "json_schema":
            request_extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": json_schema},
            }
        elif mode == "json_object":
            request_extra["response_format"] = {"type": "json_object"}
        if mode in ("json_object", "none"):
            hint = "Answer with one JSON object matching this JSON schema, and nothing else:\n"
            messages = [{"role": "system", "content": hint + json.dumps(json_schema)}, *messages]

        answer, error = "", ""
        for round_ in range(self.max_reasks + 1):
            if round_:
                self.last_stats.reasks += 1
                logger.info("LLM answer failed validation (re-ask %d/%d): %s", round_, self.max_reasks, error)
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer},
                    {
                        "role": "user",
                        "content": f"That answer is invalid:\n{error}\n"
                        "Reply again with only a corrected JSON object that matches the schema.",
                    },
                ]
            answer = self._chat(messages, max_tokens=max_tokens, temperature=temperature, extra=request_extra)
            try:
                return schema.model_validate_json(_json_text(answer))
            except ValidationError as exc:
                error = _short(str(exc), 1500)
        raise LLMOutputError(
            f"{self.model} at {self.base_url} returned no valid {schema.__name__} after "
            f"{self.max_reasks + 1} tries; last error: {_short(error)}; last output: {_short(answer)!r}",
            last_output=answer,
            errors=error,
        )

    def _chat(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float | None,
        extra: dict[str, Any] | None,
    ) -> str:
        import openai
        from tenacity import (
            Retrying,
            before_sleep_log,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential,
        )

        extra = dict(extra or {})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature if temperature is None else temperature,
        }
        if "response_format" in extra:
            kwargs["response_format"] = extra.pop("response_format")
        body = {**self.extra_body, **extra}
        if body:
            kwargs["extra_body"] = body

        first_wait, max_wait = self.retry_wait_s
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=first_wait, min=first_wait, max=max_wait),
            retry=retry_if_exception(_is_retryable),
            before_sleep=before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.last_stats.attempts += 1
                    response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise LLMUnavailableError(
                f"LLM endpoint {self.base_url} did not answer within {self.timeout_s:g} s "
                f"({self.max_retries + 1} attempts)"
            ) from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(
                f"cannot reach LLM endpoint {self.base_url} after {self.max_retries + 1} attempts ({exc}); "
                "check SYNTHLOOP_LLM_BASE_URL or unset it to use the embedded server"
            ) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise LLMUnavailableError(
                f"LLM endpoint {self.base_url} rejected the API key (HTTP {exc.status_code}); "
                "set the key in the environment variable named by llm.api_key_env (SYNTHLOOP_LLM_API_KEY)"
            ) from exc
        except openai.NotFoundError as exc:
            raise LLMUnavailableError(
                f"LLM endpoint {self.base_url} answered 404 for model '{self.model}': wrong base URL "
                f"(it should end in /v1) or unknown model ({_short(str(exc))})"
            ) from exc
        except openai.APIStatusError as exc:
            if _is_retryable(exc):
                raise LLMUnavailableError(
                    f"LLM endpoint {self.base_url} kept failing with HTTP {exc.status_code} after "
                    f"{self.max_retries + 1} attempts: {_short(str(exc))}"
                ) from exc
            raise LLMRequestError(
                f"LLM endpoint {self.base_url} rejected the request (HTTP {exc.status_code}): {_short(str(exc))}"
            ) from exc

        usage = getattr(response, "usage", None)
        if usage is not None:
            self.last_stats.prompt_tokens += usage.prompt_tokens or 0
            self.last_stats.completion_tokens += usage.completion_tokens or 0
        if not response.choices:
            return ""
        choice = response.choices[0]
        self.last_stats.finish_reasons.append(str(choice.finish_reason))
        return choice.message.content or ""
