"""The planner and reviser every front-end uses (CLI, terminal chat, web UI, LangGraph's default deps).

- `make_planner(config, n_images, seed)` → `Planner` (request → TaskSpec); the LLM (embedded llama.cpp server
  or the configured endpoint) starts on first need only;
- `make_reviser(config, planner)` → `Reviser` (spec, message → spec);
- `SYNTHLOOP_PLANNER=module:factory` swaps the planner (tests, custom planners): the factory is called as
  `factory(config, n_images, seed)`; the reviser then re-plans `request + message` with it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from synthloop.agent.errors import UserInputError

if TYPE_CHECKING:
    from synthloop.agent.config import RunConfig
    from synthloop.agent.deps import Planner, Reviser
    from synthloop.tools.llm.client import LLMClient
    from synthloop.tools.types import TaskSpec

PLANNER_HOOK_ENV = "SYNTHLOOP_PLANNER"


def planner_hook() -> Callable[..., Planner] | None:
    """The planner factory named by `SYNTHLOOP_PLANNER=module:factory` (default attribute `make_planner`), or
    None when it is unset. A name that cannot be loaded raises `UserInputError`."""
    target = os.environ.get(PLANNER_HOOK_ENV, "").strip()
    if not target:
        return None
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr or "make_planner")
    except (ImportError, AttributeError) as exc:
        raise UserInputError(f"{PLANNER_HOOK_ENV}={target} cannot be loaded: {exc}") from exc


def lazy_client(config: RunConfig) -> Callable[[], LLMClient]:
    """A function returning the LLM client, started (embedded server or configured endpoint) on first call:
    the planner and reviser call it only when their rules are unsure, so confident requests start nothing."""
    from synthloop.tools.llm.local_server import client_from_config

    client: Any = None

    def get() -> LLMClient:
        nonlocal client
        if client is None:
            client = client_from_config(config.llm)
        return client

    return get


def make_planner(config: RunConfig, n_images: int | None, seed: int | None) -> Planner:
    """A planner that starts the LLM (embedded server or configured endpoint) on first need only."""
    hook = planner_hook()
    if hook is not None:
        return hook(config, n_images, seed)
    from synthloop.agent.planner.plan import plan_request

    client = lazy_client(config)
    multilingual = config.llm.base_url is not None  # the embedded SmolLM2 reads English only
    return lambda request: plan_request(request, client, n_images=n_images, seed=seed, multilingual=multilingual)


def make_reviser(config: RunConfig, planner: Planner) -> Reviser:
    """The conversational spec editor ("make it 300", "add trucks", "YOLO instead", "no captions").

    Uses `revise_spec(spec, message, client)` (LLM started on first use); under a planner hook it plans
    `request + message` again with `planner` instead.
    """

    def replan(spec: TaskSpec, message: str) -> TaskSpec:
        return planner(f"{spec.request} {message}".strip())

    if planner_hook() is not None:
        return replan
    from synthloop.agent.planner.revise import revise_spec

    client = lazy_client(config)
    return lambda spec, message: revise_spec(spec, message, client)
