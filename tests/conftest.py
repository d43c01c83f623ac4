"""Fixtures shared by the test modules, and the environment every test runs in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fake_openai_server import FakeOpenAIServer

# Tests never reach the network: Hugging Face libraries load the tiny models built here from local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (see tests/fake_openai_server.py), stopped afterwards."""
    with FakeOpenAIServer() as fake:
        yield fake
