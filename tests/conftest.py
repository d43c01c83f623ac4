"""Fixtures shared by the test modules, and the environment every test runs in."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from fake_openai_server import FakeOpenAIServer
from fault_proxy import FaultProxy

from synthloop.tools.backend import Registry

# Tests never reach the network: Hugging Face libraries load the tiny models built here from local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Nor do they load the real YOLOv3-tiny as the default detector of the measured pairwise judge (tests that need a
# detector build a scripted one, or a tiny random Darknet model).
os.environ.setdefault("SYNTHLOOP_YOLO_DIR", "")


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (see tests/fake_openai_server.py), stopped afterwards."""
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Start a fault-injecting proxy in front of an endpoint: `fault_proxy(upstream_url, rate=0.25, seed=1, ...)`
    (see tests/fault_proxy.py); every proxy started is stopped afterwards."""
    started: list[FaultProxy] = []

    def start(upstream: str, **options: object) -> FaultProxy:
        proxy = FaultProxy(upstream, **options).start()  # type: ignore[arg-type]
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def register_backend() -> Iterator[Callable[[Registry, str, type], None]]:
    """Register a test backend in a tool's registry (as a plugin's one registry entry would), removed after."""
    added: list[tuple[Registry, str]] = []

    def register(registry: Registry, name: str, backend: type) -> None:
        registry.register(name, backend, replace=True)
        added.append((registry, name))

    yield register
    for registry, name in added:
        registry.unregister(name)
