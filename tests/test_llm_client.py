"""LLMClient against a scripted OpenAI-compatible server: retries, re-asks, errors, timeouts."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fake_openai_server import FakeOpenAIServer
from pydantic import BaseModel, Field

from synthloop.agent.config import LLMConfig
from synthloop.tools.llm import (
    LLMClient,
    LLMOutputError,
    LLMRequestError,
    LLMUnavailableError,
    client_from_config,
)


class Pet(BaseModel):
    name: str
    legs: int = Field(ge=0, le=8)


MESSAGES = [{"role": "user", "content": "Describe a pet as JSON."}]


def make_client(base_url: str, **kwargs: object) -> LLMClient:
    options: dict = {"model": "fake-model", "max_retries": 3, "max_reasks": 2, "retry_wait_s": (0.01, 0.05)}
    options.update(kwargs)
    return LLMClient(base_url, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_json_answer_is_validated_and_schema_sent_as_json_object(server: FakeOpenAIServer) -> None:
    server.queue_json({"name": "rex", "legs": 4})
    client = make_client(server.base_url)
    pet = client.complete_json(MESSAGES, Pet, max_tokens=50)
    assert pet == Pet(name="rex", legs=4)
    body = server.requests[0]["body"]
    assert body["response_format"]["type"] == "json_object"
    assert body["response_format"]["schema"]["properties"]["legs"]["maximum"] == 8
    assert body["max_tokens"] == 50 and body["temperature"] == 0.0
    assert "repeat_penalty" not in body  # only for the embedded llama.cpp server


@pytest.mark.parametrize(
    ("mode", "expected_type", "schema_hint"),
    [("json_schema", "json_schema", False), ("json_object", "json_object", True), ("none", None, True)],
)
def test_structured_output_modes(
    server: FakeOpenAIServer, mode: str, expected_type: str | None, schema_hint: bool
) -> None:
    server.queue_text('```json\n{"name": "tom", "legs": 4}\n```')
    client = make_client(server.base_url, structured_output=mode)
    assert client.complete_json(MESSAGES, Pet, max_tokens=20).name == "tom"
    body = server.requests[0]["body"]
    assert body.get("response_format", {}).get("type") == expected_type
    if mode == "json_schema":
        assert body["response_format"]["json_schema"]["schema"]["title"] == "Pet"
    has_hint = body["messages"][0]["role"] == "system" and "JSON schema" in body["messages"][0]["content"]
    assert has_hint is schema_hint


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_on_server_errors_then_succeeds(server: FakeOpenAIServer, status: int) -> None:
    server.queue_status(status)
    server.queue_status(status)
    server.queue_json({"name": "rex", "legs": 4})
    client = make_client(server.base_url)
    assert client.complete_json(MESSAGES, Pet, max_tokens=20).legs == 4
    # exactly three HTTP requests: the openai client's own retries are off
    assert len(server.requests) == 3
    assert client.last_stats.attempts == 3


def test_gives_up_after_max_retries_with_clear_error(server: FakeOpenAIServer) -> None:
    for _ in range(5):
        server.queue_status(500)
    client = make_client(server.base_url, max_retries=2)
    with pytest.raises(LLMUnavailableError, match=r"HTTP 500 after 3 attempts") as info:
        client.complete_text(MESSAGES, max_tokens=5)
    assert server.base_url in str(info.value)
    assert len(server.requests) == 3


def test_no_retry_on_400(server: FakeOpenAIServer) -> None:
    server.queue_status(400, "unsupported response_format")
    server.queue_json({"name": "never", "legs": 1})
    client = make_client(server.base_url)
    with pytest.raises(LLMRequestError, match="HTTP 400"):
        client.complete_json(MESSAGES, Pet, max_tokens=20)
    assert len(server.requests) == 1


def test_bad_key_is_actionable(server: FakeOpenAIServer) -> None:
    server.queue_status(401, "invalid api key")
    client = make_client(server.base_url)
    with pytest.raises(LLMUnavailableError, match="rejected the API key"):
        client.complete_text(MESSAGES, max_tokens=5)
    assert len(server.requests) == 1


def test_connection_refused_then_server_comes_up() -> None:
    port = free_port()
    fake = FakeOpenAIServer(port=port)
    fake.queue_json({"name": "late", "legs": 2})
    # Enough retries to outlast any scheduling delay of the thread that starts the server.
    client = make_client(f"http://127.0.0.1:{port}/v1", max_retries=1000, retry_wait_s=(0.01, 0.05))

    def start_after_a_refusal() -> None:  # the second attempt has begun only once the first one was refused
        while client.last_stats.attempts < 2:
            time.sleep(0.005)
        fake.start()

    starter = threading.Thread(target=start_after_a_refusal, daemon=True)
    starter.start()
    try:
        assert client.complete_json(MESSAGES, Pet, max_tokens=20).name == "late"
        assert client.last_stats.attempts >= 2
    finally:
        starter.join()
        fake.stop()


def test_unreachable_endpoint_names_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = make_client(url, max_retries=1)
    with pytest.raises(LLMUnavailableError, match=r"cannot reach LLM endpoint .* after 2 attempts") as info:
        client.complete_text(MESSAGES, max_tokens=5)
    assert url in str(info.value)


def test_reask_on_invalid_json_then_success(server: FakeOpenAIServer) -> None:
    server.queue_text("sure! here is a pet: rex")
    server.queue_json({"name": "rex", "legs": 40})  # parses, fails validation
    server.queue_json({"name": "rex", "legs": 4})
    client = make_client(server.base_url)
    assert client.complete_json(MESSAGES, Pet, max_tokens=20).legs == 4
    assert client.last_stats.reasks == 2
    last = server.requests[-1]["body"]["messages"]
    assert last[-2] == {"role": "assistant", "content": '{"name": "rex", "legs": 40}'}
    assert last[-1]["role"] == "user" and "legs" in last[-1]["content"] and "invalid" in last[-1]["content"]


def test_gives_up_with_llm_output_error(server: FakeOpenAIServer) -> None:
    for _ in range(3):
        server.queue_text("not json at all")
    client = make_client(server.base_url, max_reasks=2)
    with pytest.raises(LLMOutputError, match="no valid Pet after 3 tries") as info:
        client.complete_json(MESSAGES, Pet, max_tokens=20)
    assert info.value.last_output == "not json at all"
    assert len(server.requests) == 3
    assert server.pending == 0


def test_timeout_is_honoured(server: FakeOpenAIServer) -> None:
    # The answers come a minute late: a client that ignored its timeout would return a Pet, not raise.
    server.queue_json({"name": "slow", "legs": 4}, delay_s=60.0)
    server.queue_json({"name": "slow", "legs": 4}, delay_s=60.0)
    client = make_client(server.base_url, timeout_s=0.3, max_retries=1)
    with pytest.raises(LLMUnavailableError, match=r"did not answer within 0.3 s after 2 attempts"):
        client.complete_json(MESSAGES, Pet, max_tokens=20)
    assert client.last_stats.attempts == 2


def test_extra_body_and_per_call_extra_are_sent(server: FakeOpenAIServer) -> None:
    server.queue_text("hello")
    client = make_client(server.base_url, extra_body={"repeat_penalty": 1.1})
    assert client.complete_text(MESSAGES, max_tokens=5, temperature=0.7, extra={"top_k": 5}) == "hello"
    body = server.requests[0]["body"]
    assert body["repeat_penalty"] == 1.1 and body["top_k"] == 5 and body["temperature"] == 0.7


def test_client_from_config_uses_configured_endpoint(server: FakeOpenAIServer, monkeypatch) -> None:
    monkeypatch.setenv("SYNTHLOOP_LLM_API_KEY", "sk-test")
    server.queue_text("ok")
    client = client_from_config(LLMConfig(base_url=server.base_url, model="my-model", max_retries=0))
    assert client.complete_text(MESSAGES, max_tokens=3) == "ok"
    request = server.requests[0]
    assert request["body"]["model"] == "my-model"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert "repeat_penalty" not in request["body"]


def test_invalid_structured_output_mode() -> None:
    with pytest.raises(ValueError, match="structured_output"):
        LLMClient("http://127.0.0.1:1/v1", model="m", structured_output="xml")


# --- malformed answers, Retry-After, timeouts -----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["malformed", "truncated", "cut_json", "empty"])
def test_a_malformed_200_is_retried(server: FakeOpenAIServer, fault_proxy, fault: str) -> None:
    """A 200 whose body is not a chat completion (not JSON, cut short, `{}`) is retried like a 5xx; before, it
    surfaced as a raw JSONDecodeError (or, for `{}`, as an empty answer)."""
    server.queue_json({"name": "rex", "legs": 4})
    server.queue_json({"name": "rex", "legs": 4})
    proxy = fault_proxy(server.base_url, rate=0.0, script=[fault])
    client = make_client(proxy.base_url)
    assert client.complete_json(MESSAGES, Pet, max_tokens=20) == Pet(name="rex", legs=4)
    assert client.last_stats.attempts == 2 and proxy.injected[fault] == 1


def test_malformed_answers_that_persist_are_one_clear_error(server: FakeOpenAIServer, fault_proxy) -> None:
    proxy = fault_proxy(server.base_url, rate=1.0, kinds=("malformed",))
    client = make_client(proxy.base_url, max_retries=2)
    with pytest.raises(LLMUnavailableError, match=r"malformed body after 3 attempts") as info:
        client.complete_text(MESSAGES, max_tokens=5)
    assert proxy.base_url in str(info.value) and "\n" not in str(info.value)
    assert client.last_stats.attempts == 3


@pytest.mark.parametrize(("header", "value", "expected"), [
    ("Retry-After", "1", 1.0),
    ("retry-after-ms", "700", 0.7),
    ("Retry-After", "3600", 0.5),  # capped at max_retry_after_s
])
def test_retry_after_sets_the_wait(server: FakeOpenAIServer, header: str, value: str, expected: float) -> None:
    server.queue_status(429, headers={header: value})
    server.queue_json({"name": "rex", "legs": 4})
    client = make_client(server.base_url, max_retry_after_s=0.5 if value == "3600" else 30.0)
    assert client.complete_json(MESSAGES, Pet, max_tokens=20).legs == 4
    assert client.last_stats.waits == [pytest.approx(expected)]  # not the 0.01 s backoff


def test_retry_after_as_an_http_date(server: FakeOpenAIServer) -> None:
    import email.utils

    server.queue_status(503, headers={"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)})
    server.queue_json({"name": "rex", "legs": 4})
    client = make_client(server.base_url)
    assert client.complete_json(MESSAGES, Pet, max_tokens=20).legs == 4
    (wait,) = client.last_stats.waits
    assert 0.05 < wait <= 2.0  # the date's whole seconds, not the backoff (at most 0.05 s here)


def test_retry_after_parsing() -> None:
    from synthloop.tools.llm.client import retry_after_seconds

    now = 1_700_000_000.0
    assert retry_after_seconds({"retry-after": "2.5"}, now=now) == 2.5
    assert retry_after_seconds({"retry-after": "-3"}, now=now) == 0.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}, now=now) == 1.5
    assert retry_after_seconds({"retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"}, now=now) == pytest.approx(10.0)
    assert retry_after_seconds({"retry-after": "Tue, 14 Nov 2023 22:13:00 GMT"}, now=now) == 0.0  # in the past
    for unreadable in ({"retry-after": "soon"}, {"retry-after": ""}, {}, None):
        assert retry_after_seconds(unreadable, now=now) is None


def test_a_hanging_endpoint_is_bounded_by_max_call_s(server: FakeOpenAIServer) -> None:
    """Answers a minute late, a hundred retries allowed: `max_call_s` ends the call after a few attempts, not
    after 101 (counted, not timed)."""
    for _ in range(20):
        server.queue_json({"name": "slow", "legs": 4}, delay_s=60.0)
    client = make_client(server.base_url, timeout_s=0.3, max_retries=100, max_call_s=1.0)
    with pytest.raises(LLMUnavailableError, match=r"did not answer within 0\.3 s"):
        client.complete_text(MESSAGES, max_tokens=5)
    assert 1 <= client.last_stats.attempts <= 5


def test_config_timeouts_reach_the_http_client() -> None:
    config = LLMConfig(base_url="http://127.0.0.1:1/v1", connect_timeout_s=2.0, timeout_s=40.0, max_call_s=90.0)
    client = client_from_config(config)
    timeout = client._client.timeout
    assert (timeout.connect, timeout.read) == (2.0, 40.0)
    assert (client.connect_timeout_s, client.max_call_s, client.max_retry_after_s) == (2.0, 90.0, 30.0)
    defaults = client_from_config(LLMConfig(base_url="http://127.0.0.1:1/v1"))
    assert defaults.connect_timeout_s <= 5.0 and defaults.max_call_s <= 120.0  # a dead host fails in seconds


def test_a_dead_endpoint_fails_in_a_few_attempts_with_the_default_settings() -> None:
    """Connection refused, default retries: four attempts and one error naming the endpoint (counted, not timed)."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = client_from_config(LLMConfig(base_url=url))
    with pytest.raises(LLMUnavailableError, match="cannot reach LLM endpoint") as info:
        client.complete_text(MESSAGES, max_tokens=5)
    assert client.last_stats.attempts == 4 and "\n" not in str(info.value) and url in str(info.value)
