"""The planner: a plain-language request in, a grounded `TaskSpec` out.

Two passes:
1. the LLM (through `LLMClient.complete_json`, schema-constrained) fills a small `PlanProposal`: classes,
   image count, size, tasks, formats, scene, style, difficulty;
2. `grounding.ground_spec` keeps only what the request text backs and extracts deterministically what the
   LLM missed (see `synthloop.agent.planner.grounding`).
With `llm="auto"` (the default) the deterministic reader runs first and the LLM is asked only when it is
unsure (no class found, content words it could not place, a number it could not assign): on the 135M model
the rules are more accurate than the model, and a confident request then plans in milliseconds.
`llm="always"` asks the LLM for every request.

`client=None` plans deterministically (pass 2 alone): no model needed, same guarantees, a little less recall
on unusual phrasings. If the LLM answers with invalid output even after re-asks, the planner logs it and
falls back to the deterministic pass; an unreachable endpoint (`LLMUnavailableError`) propagates, since the
user configured it and can fix it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from synthloop.agent.planner.extract import extract
from synthloop.agent.planner.grounding import ground_spec
from synthloop.agent.planner.language import detect_language
from synthloop.agent.planner.lexicon import FORMAT_LIST, TASK_LIST
from synthloop.agent.planner.multilingual import UNTRANSLATED_QUESTION, language_spec, plan_translated, translate
from synthloop.agent.planner.schemas import PlanProposal
from synthloop.agent.planner.text import clean_request
from synthloop.prompts import examples_sha256, load_examples, load_prompt
from synthloop.tools.llm.client import LLMOutputError
from synthloop.tools.types import TaskSpec

if TYPE_CHECKING:
    from synthloop.tools.llm.client import LLMClient

logger = logging.getLogger(__name__)

PROMPT_NAME = "plan_spec"
SYSTEM_PROMPT_NAME = "plan_spec_system"
EXAMPLES_NAME = "plan_spec_examples"
MAX_PROPOSAL_TOKENS = 256
# The model sees at most this much of the request; grounding always reads all of it.
MAX_PROMPT_REQUEST_CHARS = 1500


def resolve_client(client: Any) -> LLMClient | None:
    """The client itself, or the one a factory makes (called only when the LLM is actually needed)."""
    if client is None or hasattr(client, "complete_json"):
        return client
    return client() if callable(client) else None


def plan_messages(request: str) -> list[dict[str, Any]]:
    """The chat messages sent to the LLM: instructions, few-shot turns from the examples file, the request.

    Everything before the last message is the same for every request, so llama.cpp's prompt cache reuses
    it and only the request itself is processed per call.
    """
    prompt = load_prompt(PROMPT_NAME)
    system = load_prompt(SYSTEM_PROMPT_NAME).render(tasks=TASK_LIST, formats=FORMAT_LIST)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for example in load_examples(EXAMPLES_NAME):
        messages.append({"role": "user", "content": prompt.render(request=example["request"])})
        messages.append({"role": "assistant", "content": json.dumps(example["output"])})
    messages.append({"role": "user", "content": prompt.render(request=request[:MAX_PROMPT_REQUEST_CHARS])})
    return messages


def prompt_provenance() -> dict[str, str]:
    """Hashes of the planner's prompt templates and examples, for manifests and eval reports."""
    return {
        "prompt": PROMPT_NAME,
        "prompt_sha256": load_prompt(PROMPT_NAME).sha256,
        "system_prompt_sha256": load_prompt(SYSTEM_PROMPT_NAME).sha256,
        "examples_sha256": examples_sha256(EXAMPLES_NAME),
    }


def propose(request: str, client: LLMClient) -> PlanProposal | None:
    """Ask the LLM for a `PlanProposal`; None when its output stayed invalid after re-asks."""
    try:
        return client.complete_json(plan_messages(request), PlanProposal, max_tokens=MAX_PROPOSAL_TOKENS)
    except LLMOutputError as exc:
        logger.warning("planner LLM gave no valid proposal, planning deterministically: %s", exc)
        return None


def plan_request(
    request: str,
    client: LLMClient | Callable[[], LLMClient] | None,
    *,
    n_images: int | None = None,
    seed: int | None = None,
    llm: Literal["auto", "always"] = "auto",
    multilingual: bool = False,
) -> TaskSpec:
    """Plan a dataset from a plain-language request.

    The returned spec only contains classes and numbers that occur in the request; what is not stated gets
    a default listed in `spec.defaults_used`, anything the caller must settle (no object class found,
    impossible counts or sizes) is in `spec.questions`, and what the request asks for that the spec does not
    carry is in `spec.notices`. `n_images` / `seed` (e.g. from `--n` / `--seed`) override the request;
    out-of-range values raise `ValueError`. `client` may be a factory, called only when the LLM is actually
    asked. A request in another language gets a `language` question, unless `multilingual` (an endpoint the
    user configured, not the embedded model) and a client are given: then the LLM translates it and the
    translation is grounded in the original (`multilingual.plan_translated`). Odd requests (empty, junk,
    prompt injection) never raise: they give a spec with questions.
    """
    text = clean_request(request)
    language = detect_language(text)
    if language is not None:
        return _plan_foreign(text, language, client if multilingual else None, n_images=n_images, seed=seed)
    proposal = None
    if client is not None and text.strip():
        unsure = extract(text).uncertain() if llm == "auto" else ["llm=always"]
        if unsure:
            logger.debug("planner asks the LLM: %s", "; ".join(unsure))
            llm_client = resolve_client(client)
            proposal = propose(text, llm_client) if llm_client is not None else None
            logger.debug("planner proposal: %s", proposal)
    return ground_spec(text, proposal, n_images=n_images, seed=seed)


def _plan_foreign(text: str, language: str, client: Any, *, n_images: int | None, seed: int | None) -> TaskSpec:
    llm_client = resolve_client(client) if client is not None else None
    if llm_client is None:
        return language_spec(text, language, n_images=n_images, seed=seed)
    translation = translate(text, llm_client)
    if translation is None or not translation.english.strip():
        return language_spec(text, language, n_images=n_images, seed=seed, question=UNTRANSLATED_QUESTION)
    logger.debug("planner translation (%s): %s", language, translation)
    return plan_translated(text, translation, language, n_images=n_images, seed=seed)
