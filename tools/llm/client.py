"""`LLMClient`: the one client every LLM/VLM call goes through.

It wraps the `openai` client (pointed at any OpenAI-compatible endpoint: the embedded llama.cpp server, a
vLLM/Ollama server, OpenAI itself) and adds what every caller needs:

1. Transport retries with tenacity: exponential backoff with small waits, `max_retries + 1` attempts in all,
   only on connection errors, timeouts, HTTP 429, HTTP 5xx and answers whose body is not a chat completion
   (HTTP 200 with malformed or truncated JSON). A `Retry-After` header (seconds or an HTTP date, or OpenAI's
   `retry-after-ms`) sets the wait, capped at `max_retry_after_s`. The openai client's own retries are off,
   so the attempt count is exactly ours.
2. Timeouts sized so that a dead endpoint fails in seconds: `connect_timeout_s` (short) to open a connection,
   `timeout_s` (long enough for a slow model) to wait for the answer, and `max_call_s` for one call with all
   its retries and waits, so a hanging endpoint is bounded too.
3. Structured output: `complete_json` sends a pydantic schema in the form the endpoint understands
   (`structured_output`), validates the answer with pydantic and re-asks with the validation error when the
   answer is invalid, at most `max_reasks` times, then raises `LLMOutputError`.
4. Errors a user can act on (endpoint unreachable, key rejected, model unknown, malformed answers) become
   `LLMUnavailableError` with a one-line message that names the endpoint.

Vision calls use the same methods: `user_message(text, [png_bytes, ...])` builds a user message whose
content is a text part plus `image_url` parts holding base64 data URLs (OpenAI's vision message format).

The client knows nothing about the agent's config classes (tools never import agent):
`LLMClient.from_settings` takes any object with the fields of `LLMSettings`, which
`synthloop.agent.config.LLMConfig` has.
"""

from __future__ import annotations

import email.utils
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
DEFAULT_TIMEOUT_S = 60.0  # waiting for an answer: a slow model on a busy CPU
DEFAULT_CONNECT_TIMEOUT_S = 5.0  # opening a connection: a dead host fails fast
DEFAULT_MAX_CALL_S = 120.0  # one call, retries and waits included: a hanging endpoint is bounded
DEFAULT_MAX_RETRY_AFTER_S = 30.0  # the longest Retry-After wait honoured


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


class MalformedResponseError(Exception):
    """The endpoint answered 200 with a body that is not a chat completion (retried, then reported)."""


class LLMSettings(Protocol):
    """The fields `LLMClient.from_settings` reads (structurally satisfied by `agent.config.LLMConfig`).

    `connect_timeout_s`, `max_call_s` and `max_retry_after_s` are optional (the defaults above when absent).
    """

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
    """What the last `complete_*` call cost: HTTP attempts, re-asks, waits between attempts, wall time, tokens."""

    attempts: int = 0
    reasks: int = 0
    waits: list[float] = field(default_factory=list)
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)


def _is_retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError | MalformedResponseError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_seconds(headers: Any, *, now: float | None = None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if
    absent or unreadable. Never negative."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _checked_response(response: Any) -> Any:
    """The response if it is a chat completion with readable choices; `MalformedResponseError` otherwise (a 200
    whose JSON parsed into something else, e.g. `{}` from a broken proxy)."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list):
        raise MalformedResponseError(f"the answer has no 'choices' list: {_short(repr(response), 200)}")
    for choice in choices:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if message is None or not (content is None or isinstance(content, str)):
            raise MalformedResponseError(f"a choice has no readable message: {_short(repr(choice), 200)}")
    return response


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
    """`text` on one line, cut to `limit` characters (error messages are printed on one line)."""
    text = " ".join(text.split())
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
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = 3,
        max_reasks: int = 2,
        temperature: float = 0.0,
        structured_output: str = "json_object_schema",
        extra_body: dict[str, Any] | None = None,
        retry_wait_s: tuple[float, float] = (0.25, 4.0),
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_call_s: float | None = DEFAULT_MAX_CALL_S,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    ) -> None:
        """Create a client; nothing is sent until the first call.

        `extra_body` is merged into every request body (e.g. `{"repeat_penalty": 1.1}` for llama.cpp);
        `retry_wait_s` bounds the exponential backoff between transport retries (first wait, longest wait);
        `timeout_s` is how long one attempt waits for the answer, `connect_timeout_s` for the connection,
        `max_call_s` (None: unbounded; never less than `timeout_s`) how long one call may take with all its
        attempts and waits;
        `max_retry_after_s` caps the wait a `Retry-After` header asks for.
        """
        if structured_output not in STRUCTURED_OUTPUT_MODES:
            raise ValueError(f"structured_output must be one of {STRUCTURED_OUTPUT_MODES}, not {structured_output!r}")
        if max_retries < 0 or max_reasks < 0:
            raise ValueError("max_retries and max_reasks must be >= 0")
        if min(timeout_s, connect_timeout_s, max_call_s or 1.0) <= 0 or max_retry_after_s < 0:
            raise ValueError("timeouts must be > 0 and max_retry_after_s >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_call_s = None if max_call_s is None else max(max_call_s, timeout_s)  # one full attempt at least
        self.max_retry_after_s = max_retry_after_s
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
            connect_timeout_s=getattr(settings, "connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S),
            max_call_s=getattr(settings, "max_call_s", DEFAULT_MAX_CALL_S),
            max_retry_after_s=getattr(settings, "max_retry_after_s", DEFAULT_MAX_RETRY_AFTER_S),
        )

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def _client(self) -> openai.OpenAI:
        if self._openai is None:
            import openai

            # max_retries=0: tenacity owns retries, so one logical call is exactly max_retries+1 requests.
            self._openai = openai.OpenAI(
                base_url=self.base_url, api_key=self._api_key, timeout=self._timeout(self.timeout_s), max_retries=0
            )
        return self._openai

    def _timeout(self, read_s: float) -> Any:
        import httpx

        return httpx.Timeout(read_s, connect=min(self.connect_timeout_s, read_s))

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
        from tenacity import RetryCallState, Retrying, before_sleep_log, retry_if_exception, wait_exponential

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

        started = time.monotonic()
        first_wait, max_wait = self.retry_wait_s
        backoff = wait_exponential(multiplier=first_wait, min=first_wait, max=max_wait)

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome is not None else None
            asked = retry_after_seconds(getattr(getattr(failure, "response", None), "headers", None))
            return min(asked, self.max_retry_after_s) if asked is not None else backoff(state)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.max_retries + 1:
                return True
            upcoming = getattr(state, "upcoming_sleep", 0.0) or 0.0
            return self.max_call_s is not None and time.monotonic() - started + upcoming >= self.max_call_s

        log_retry = before_sleep_log(logger, logging.INFO)  # expected; a failure that stays is one error

        def before_sleep(state: RetryCallState) -> None:
            self.last_stats.waits.append(state.next_action.sleep if state.next_action is not None else 0.0)
            log_retry(state)

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.last_stats.attempts += 1
                    response = self._request(kwargs, started)
        except MalformedResponseError as exc:
            raise LLMUnavailableError(
                f"LLM endpoint {self.base_url} answered with a malformed body {self._tries(started)}: {exc}; "
                "is it an OpenAI-compatible endpoint (base URL ending in /v1)?"
            ) from exc
        except openai.APITimeoutError as exc:
            raise LLMUnavailableError(
                f"LLM endpoint {self.base_url} did not answer within {self.timeout_s:g} s {self._tries(started)}; "
                "raise llm.timeout_s in the run config if the model is just slow"
            ) from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(
                f"cannot reach LLM endpoint {self.base_url} {self._tries(started)} ({_short(str(exc))}); "
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
                    f"LLM endpoint {self.base_url} kept failing with HTTP {exc.status_code} "
                    f"{self._tries(started)}: {_short(str(exc))}"
                ) from exc
            raise LLMRequestError(
                f"LLM endpoint {self.base_url} rejected the request (HTTP {exc.status_code}): {_short(str(exc))}"
            ) from exc

        usage = getattr(response, "usage", None)
        if usage is not None:
            self.last_stats.prompt_tokens += getattr(usage, "prompt_tokens", 0) or 0
            self.last_stats.completion_tokens += getattr(usage, "completion_tokens", 0) or 0
        if not response.choices:
            return ""
        choice = response.choices[0]
        self.last_stats.finish_reasons.append(str(choice.finish_reason))
        return choice.message.content or ""

    def _request(self, kwargs: dict[str, Any], started: float) -> Any:
        """One HTTP attempt, its answer timeout cut to what is left of `max_call_s`; a body that is not a chat
        completion raises `MalformedResponseError` (retried like a transport error)."""
        import openai

        read_s = self.timeout_s
        if self.max_call_s is not None:
            read_s = max(0.05, min(read_s, self.max_call_s - (time.monotonic() - started)))
        try:
            response = self._client.chat.completions.create(**kwargs, timeout=self._timeout(read_s))
        except (json.JSONDecodeError, UnicodeDecodeError, openai.APIResponseValidationError) as exc:
            raise MalformedResponseError(f"not a chat completion ({_short(str(exc), 120)})") from exc
        return _checked_response(response)

    def _tries(self, started: float) -> str:
        attempts = self.last_stats.attempts
        return f"after {attempts} attempt{'s' if attempts != 1 else ''} ({time.monotonic() - started:.1f} s)"
