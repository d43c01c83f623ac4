"""`revise_spec`: one conversational edit ("make it 300", "add trucks", "YOLO instead", "no captions") applied
to a spec, by the rules of `edits` first and the LLM (grounded in the message) only where they miss."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from synthloop.agent.planner.edits import (
    SpecEdit,
    apply_edit,
    ground_edit,
    merge_edits,
    not_understood,
    parse_edit,
    settled_notices,
)
from synthloop.agent.planner.extract import extract
from synthloop.agent.planner.lexicon import FORMAT_LIST, TASK_LIST
from synthloop.agent.planner.plan import resolve_client
from synthloop.agent.planner.text import clean_request
from synthloop.prompts import load_examples, load_prompt
from synthloop.tools.llm.client import LLMOutputError
from synthloop.tools.types import TaskSpec

if TYPE_CHECKING:
    from synthloop.tools.llm.client import LLMClient

logger = logging.getLogger(__name__)

REVISE_SYSTEM_PROMPT_NAME = "revise_spec_system"
REVISE_PROMPT_NAME = "revise_spec"
REVISE_EXAMPLES_NAME = "revise_spec_examples"
MAX_EDIT_TOKENS = 160


def revise_messages(spec: TaskSpec, message: str) -> list[dict[str, Any]]:
    """Chat messages asking the LLM for a `SpecEdit`: instructions, few-shot turns, the current spec summary."""
    prompt = load_prompt(REVISE_PROMPT_NAME)
    system = load_prompt(REVISE_SYSTEM_PROMPT_NAME).render(tasks=TASK_LIST, formats=FORMAT_LIST)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for example in load_examples(REVISE_EXAMPLES_NAME):
        messages.append({"role": "user", "content": prompt.render(spec=example["spec"], message=example["message"])})
        messages.append({"role": "assistant", "content": json.dumps(example["output"])})
    messages.append({"role": "user", "content": prompt.render(spec=spec_line(spec), message=message[:500])})
    return messages


def spec_line(spec: TaskSpec) -> str:
    """The spec in one line, as the reviser's prompt shows it to the LLM."""
    return (f"classes={spec.class_names} n_images={spec.n_images} size={spec.width}x{spec.height} "
            f"tasks={[t.value for t in spec.tasks]} formats={[f.value for f in spec.formats]} "
            f"difficulty={spec.difficulty.value} seed={spec.seed}")


def revise_spec(
    spec: TaskSpec, message: str, client: LLMClient | Callable[[], LLMClient] | None = None
) -> TaskSpec:
    """Apply one conversational edit ("make it 300", "add trucks", "YOLO instead", "no captions") to `spec`.

    Rules first (`synthloop.agent.planner.edits.parse_edit`); when they find nothing, or the message has words
    they could not place, and a client is given, the LLM proposes a schema-constrained `SpecEdit`, kept only
    where the message backs it (`ground_edit`: numbers that occur in it, classes that are spans of it or already
    in the spec) and only for fields the rules left alone (`merge_edits`). A message neither understands
    gives the spec unchanged plus a question saying so. Never raises on odd input.
    """
    text = clean_request(message)
    if not text:
        return not_understood(spec, message)
    parsed = parse_edit(spec, text)
    read = extract(text)
    unexplained = read.unexplained
    if client is not None and (parsed.is_empty() or unexplained):
        try:
            llm = resolve_client(client)
            assert llm is not None
            proposal = llm.complete_json(revise_messages(spec, text), SpecEdit, max_tokens=MAX_EDIT_TOKENS)
        except LLMOutputError as exc:
            logger.warning("reviser LLM gave no valid edit: %s", exc)
            proposal = None
        if proposal is not None:
            parsed = merge_edits(parsed, ground_edit(spec, proposal, text))
            logger.debug("reviser edit (rules + grounded LLM): %s", parsed.edit)
    if parsed.is_empty() and not read.notices and not settled_notices(spec, text):
        return not_understood(spec, text)  # a message that only asks for depth maps gets its notice instead
    return apply_edit(spec, parsed, text)
