"""The planner: plain-language requests and conversational edits in, grounded `TaskSpec`s out.

Modules, from the request text up:
- `lexicon` (+ the `vocabulary/` data files): every word list and keyword pattern, task/format names from
  the enums in `synthloop.tools.types`;
- `text`, `numbers`, `fields`, `phrases`: tokens, numbers and counts, splits/seed/typos, class phrases;
- `extract`: everything the rules read from one request; `grounding`: that (plus an LLM proposal, kept only
  where the text backs it) → a `TaskSpec` with defaults and questions;
- `plan`: `plan_request` (rules first, the LLM when they are unsure); `edits` + `revise`: `revise_spec`;
- `factories`: the planner and reviser the CLI, chat, web UI and LangGraph entry share.

The names below are imported on first use, so `from synthloop.agent.planner import make_planner` stays cheap
for the CLI (the vocabulary, pydantic schemas and LLM client load only when a request is planned).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PLANNER_HOOK_ENV": "factories",
    "lazy_client": "factories",
    "make_planner": "factories",
    "make_reviser": "factories",
    "planner_hook": "factories",
    "NO_CLASS_QUESTION": "grounding",
    "ground_spec": "grounding",
    "render_prompt_for": "grounding",
    "plan_messages": "plan",
    "plan_request": "plan",
    "prompt_provenance": "plan",
    "revise_spec": "revise",
    "PlanProposal": "schemas",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
