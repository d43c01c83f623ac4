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
