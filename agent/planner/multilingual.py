"""Requests in other languages.

With the embedded model (no endpoint configured) or no model at all, a non-English request gets a spec
with a `language` question saying so (`language_spec`): the rules and SmolLM2 read English only.

With a configured endpoint the LLM translates the request into English and lists a glossary: each phrase of
the request, exactly as written, with its English meaning (`schemas.Translation`). The English text is
planned by the same rules as any request, then grounded in the original (`plan_translated`):
- a glossary entry counts only when its `source` occurs in the request;
- a class, attribute, place or style word is kept when a counted entry's English or the request itself
  (loanwords, 'COCO', '640x480') has it; a task or format when its keyword does; a number (image count,
  size, split, seed) when its digits are in the request or a counted entry spells it;
- what the translation says that nothing backs is dropped and named back as a notice, and so are the
  request's words that no counted entry covers (grammar words of its language aside).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from synthloop.agent.planner.extract import extract
from synthloop.agent.planner.grounding import NO_CLASS_QUESTION, ground_spec
from synthloop.agent.planner.language import ENGLISH_WORDS, GRAMMAR, foreign_words
from synthloop.agent.planner.notices import FUNCTION_WORDS, merge_notices
from synthloop.agent.planner.numbers import parse_number
from synthloop.agent.planner.schemas import Translation
from synthloop.agent.planner.text import TOKEN, normalise, singular
from synthloop.prompts import load_examples, load_prompt
from synthloop.tools.llm.client import LLMOutputError
from synthloop.tools.types import Difficulty, ExportFormat, Notice, ObjectSpec, Question, Splits, Task, TaskSpec

if TYPE_CHECKING:
    from synthloop.tools.llm.client import LLMClient

logger = logging.getLogger(__name__)

LANGUAGE_QUESTION = (
    "I understand English requests only with the embedded model (SmolLM2); rephrase in English, or set "
    "SYNTHLOOP_LLM_BASE_URL / SYNTHLOOP_LLM_MODEL to a multilingual OpenAI-compatible endpoint"
)
UNTRANSLATED_QUESTION = "The configured model could not translate this request; please rephrase it in English."
TRANSLATE_PROMPT_NAME = "plan_spec_translate"
TRANSLATE_SYSTEM_PROMPT_NAME = "plan_spec_translate_system"
TRANSLATE_EXAMPLES_NAME = "plan_spec_translate_examples"
MAX_TRANSLATION_TOKENS = 700
UNBACKED = "in the model's translation only: no word of the request was matched to it"
UNSPACED = ("chinese", "japanese")  # languages written without spaces: glossary sources are found as substrings


def language_spec(text: str, language: str, *, n_images: int | None = None, seed: int | None = None,
                  question: str = LANGUAGE_QUESTION) -> TaskSpec:
    """A spec that asks for the request in English (nothing is planned from it, and it is named back whole)."""
    base = ground_spec("", n_images=n_images, seed=seed)
    notice = Notice(kind="not_understood", text=text[:200] or language, about="other",
                    reason=f"written in {language}; the planner reads English")
    return base.model_copy(update={"request": text, "questions": [Question(source="language", text=question)],
                                   "notices": [notice]})


def translate_messages(request: str) -> list[dict[str, Any]]:
    """Chat messages asking the LLM for a `Translation`: instructions, few-shot turns, the request."""
    prompt = load_prompt(TRANSLATE_PROMPT_NAME)
    messages: list[dict[str, Any]] = [{"role": "system", "content": load_prompt(TRANSLATE_SYSTEM_PROMPT_NAME).render()}]
    for example in load_examples(TRANSLATE_EXAMPLES_NAME):
        messages.append({"role": "user", "content": prompt.render(request=example["request"])})
        messages.append({"role": "assistant", "content": json.dumps(example["output"], ensure_ascii=False)})
    messages.append({"role": "user", "content": prompt.render(request=request[:1500])})
    return messages


def translate(request: str, client: LLMClient) -> Translation | None:
    """The LLM's translation and glossary; None when its output stayed invalid after re-asks."""
    try:
        return client.complete_json(translate_messages(request), Translation, max_tokens=MAX_TRANSLATION_TOKENS)
    except LLMOutputError as exc:
        logger.warning("planner LLM gave no valid translation: %s", exc)
        return None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _english(words_of: str) -> set[str]:
    tokens = {t for t in TOKEN.findall(normalise(words_of)) if t[0].isalnum()}
    return tokens | {singular(t) for t in tokens}


def plan_translated(original: str, translation: Translation, language: str, *, n_images: int | None = None,
                    seed: int | None = None) -> TaskSpec:
    """Plan the LLM's English translation, keeping only what the original request backs (module docstring)."""
    folded = _fold(original)
    unspaced = language.lower() in UNSPACED
    entries = [e for e in translation.glossary
               if e.source.strip() and _occurs(_fold(e.source.strip()), folded, unspaced)]
    backed_text = " , ".join([*(e.english for e in entries), normalise(original)])
    backed = _english(backed_text)
    spec = ground_spec(translation.english, None, n_images=n_images, seed=seed)
    notices: list[Notice] = []

    def keep(words: str, what: Any = "other") -> bool:
        ok = all(w in backed or singular(w) in backed or w in FUNCTION_WORDS for w in words.split())
        if not ok:
            notices.append(Notice(kind="not_understood", text=words[:200], reason=UNBACKED, about=what))
        return ok

    def defaulted(name: str) -> bool:
        return any(d.startswith(f"{name}=") for d in spec.defaults_used)

    objects = [o.model_copy(update={"attributes": [a for a in o.attributes if keep(a, "class")]})
               for o in spec.objects if o.name == "object" or keep(o.name, "class")]
    questions = [q for q in spec.questions if q.text != NO_CLASS_QUESTION or not objects]
    if not objects:
        objects = [ObjectSpec(name="object")]
        questions.append(Question(source="planner", text=NO_CLASS_QUESTION))
    read = extract(backed_text)
    update: dict[str, Any] = {
        "objects": objects,
        "tasks": [t for t in spec.tasks if defaulted("tasks") or t in read.tasks or keep(t.value, "task")],
        "formats": [f for f in spec.formats if defaulted("formats") or f in read.formats or keep(f.value, "format")],
        "scene": ", ".join(p for p in spec.scene.split(", ") if p and keep(p, "scene")),
        "style": ", ".join(p for p in spec.style.split(", ") if p and keep(p, "style")),
        "request": original,
        "questions": questions,
    }
    numbers = _numbers(original, entries)
    defaults = list(spec.defaults_used)

    def unbacked_number(what: str, default: str, **values: Any) -> None:
        notices.append(Notice(kind="not_understood", text=what[:200], reason=UNBACKED))
        defaults.append(f"{default} (the translation's {what} is not in the request)")
        update.update(values)

    if n_images is None and not any(d.startswith("n_images") for d in defaults) and spec.n_images not in numbers:
        unbacked_number(f"{spec.n_images} images", "n_images=100", n_images=100)
    if not {spec.width, spec.height} <= numbers | {512}:
        unbacked_number(f"{spec.width}x{spec.height}", "size=512x512", width=512, height=512)
    split_numbers = {round(100 * getattr(spec.splits, s)) for s in spec.splits.names()}
    if spec.splits != Splits() and not split_numbers <= numbers:
        unbacked_number("splits " + "/".join(map(str, sorted(split_numbers))), "splits=80/20/0", splits=Splits())
    if seed is None and spec.seed not in numbers | {0}:
        unbacked_number(f"seed {spec.seed}", "seed=0", seed=0)
    if spec.difficulty is not Difficulty.medium and read.difficulty is not spec.difficulty:
        unbacked_number(f"{spec.difficulty.value} difficulty", "difficulty=medium", difficulty=Difficulty.medium)
    if not update["tasks"]:
        update["tasks"] = [Task.detection]
        defaults.append("tasks=detection (no task of the translation is in the request)")
    if not update["formats"]:
        update["formats"] = [ExportFormat.coco]
        defaults.append("formats=coco (no format of the translation is in the request)")
    update["defaults_used"] = defaults[:30]
    planned = TaskSpec.model_validate({**spec.model_dump(), **update, "notices": []})
    carried = _english(" ".join([planned.scene, planned.style, *(f"{o.name} {' '.join(o.attributes)}"
                                                                for o in planned.objects)]))
    untranslated = [Notice(kind="not_understood", text=w[:200], reason="no translation of it was given")
                    for w in _uncovered(original, entries, language, carried)]
    return planned.model_copy(update={"notices": merge_notices(spec.notices, notices, untranslated)})


def _occurs(source: str, text: str, unspaced: bool) -> bool:
    if unspaced:
        return source in text
    return re.search(rf"(?<!\w){re.escape(source)}(?!\w)", text) is not None


def _numbers(original: str, entries: list) -> set[int]:
    """Whole numbers the request writes in digits, or that a counted glossary entry spells in English."""
    found = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", original) if n.replace(",", "").isdigit()}
    for entry in entries:
        tokens = TOKEN.findall(normalise(entry.english))
        for i in range(len(tokens)):
            parsed = parse_number(tokens, i)
            if parsed is not None and parsed[0] == int(parsed[0]):
                found.add(int(parsed[0]))
    return found


def _uncovered(original: str, entries: list, language: str, placed: set[str]) -> list[str]:
    """Words of the request that no counted glossary entry covers, its language's grammar and English aside."""
    text = _fold(original)
    grammar = GRAMMAR.get(language.lower(), frozenset())
    unspaced = language.lower() in UNSPACED
    for phrase in sorted({_fold(e.source.strip()) for e in entries} | (grammar if unspaced else set()),
                         key=len, reverse=True):
        text = text.replace(phrase, " ") if unspaced else re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", text)
    return list(dict.fromkeys(
        w for w in foreign_words(text)
        if w not in grammar and w not in ENGLISH_WORDS and w not in placed and (len(w) > 2 or not w.isascii())
    ))
