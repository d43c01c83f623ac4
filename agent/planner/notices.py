"""Nothing the user asked for is silently dropped: what the plan does not carry is named back as a `Notice`.

- `take_unsupported(text)`: mentions of things synthloop cannot produce (depth maps, keypoints, 3D boxes,
  video, TFRecord, …; `vocabulary/unsupported.json`) become `cannot_deliver` notices with the reason, and are
  blanked from the text so the supported readers do not half-read them ('3d bounding boxes' is not 2D
  detection). A negated mention ('no keypoints') is blanked without a notice.
- `unplaced_words(text, spec, …)`: the request's content words that ended up in no field of the spec (class
  names, attributes, scene, style) and in no task, format or difficulty phrase, grouped into phrases of
  adjacent words ('trash bins'); `not_understood_notices` turns them into notices.
Grammar and request boilerplate (`vocabulary/function_words.txt` and the planner's other function-word lists)
never count; nor do numbers, sizes, splits and seeds (read elsewhere) or verb forms ('parked', 'running').
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from synthloop.agent.planner.fields import ALIASES, blank
from synthloop.agent.planner.lexicon import (
    ATTRIBUTE_WORDS,
    BLOCKED,
    COLOURS,
    DIFFICULTY_PATTERNS,
    DIFFICULTY_WORDS,
    FILLER,
    FORMAT_PATTERNS,
    FORMAT_WORDS,
    GENERIC,
    IMAGE_NOUNS,
    ING_NOUNS,
    INTRODUCERS,
    KNOWN_OBJECTS,
    LOCATIVE,
    NUMBER_WORDS,
    SEPARATORS,
    STOPS,
    STYLE_PATTERN,
    TASK_PATTERNS,
    TASK_WORDS,
    WEAK_TASK_PATTERNS,
    table,
    words,
)
from synthloop.agent.planner.text import TOKEN, is_negated, singular
from synthloop.tools.types import Notice, TaskSpec

MAX_NOTICES = 20  # TaskSpec.notices' bound
FUNCTION_WORDS = (
    words("function_words") | STOPS | FILLER | GENERIC | INTRODUCERS | SEPARATORS | LOCATIVE | IMAGE_NOUNS
    | BLOCKED | NUMBER_WORDS | TASK_WORDS | FORMAT_WORDS | DIFFICULTY_WORDS
) - words("instruction_words")
DATASET_NOUNS = frozenset({"dataset", "datasets", "data", "set", "collection", "batch", "subset", "sample"})
NOT_READ = "not read as an object, attribute, place, style, task or format"
NO_OBJECT = "an attribute with no object it belongs to"


@dataclass(frozen=True)
class Unsupported:
    """Something a request may ask for that synthloop cannot produce."""

    about: Literal["task", "format"]
    pattern: str
    reason: str


UNSUPPORTED = tuple(Unsupported(**entry) for entry in table("unsupported")["entries"])


def _matches(pattern: str, text: str) -> Iterable[re.Match[str]]:
    """Whole-word matches, negated or not."""
    return re.finditer(rf"(?<![\w-])(?:{pattern})(?!\w)", text)


def take_unsupported(text: str) -> tuple[str, list[Notice]]:
    """(text with every unsupported mention blanked, a `cannot_deliver` notice per non-negated mention, in the
    order the request names them)."""
    found: list[tuple[int, Notice]] = []
    for entry in UNSUPPORTED:
        for m in list(_matches(entry.pattern, text)):
            if not is_negated(text, m.start()):
                mention = " ".join(m.group(0).split())[:200]
                found.append((m.start(), Notice(kind="cannot_deliver", text=mention, reason=entry.reason,
                                                about=entry.about)))
            text = blank(text, m.span())
    return text, list(dict.fromkeys(notice for _, notice in sorted(found, key=lambda item: item[0])))


def _understood_spans(text: str, spec: TaskSpec) -> list[tuple[int, int]]:
    """Character spans of task, format, difficulty and style phrases (negated ones too: 'no masks' is
    understood); a weak task cue ('describe') only when its task was planned."""
    patterns = [*TASK_PATTERNS.values(), *FORMAT_PATTERNS.values(), *DIFFICULTY_PATTERNS.values(),
                STYLE_PATTERN]
    patterns += [p for task, p in WEAK_TASK_PATTERNS.items() if task in spec.tasks]
    return [m.span() for pattern in patterns for m in _matches(pattern, text)]


def _placed_words(spec: TaskSpec, extra: Iterable[str]) -> set[str]:
    """Every word the spec carries in its free-text fields, plus `extra` (e.g. classes an edit removed)."""
    texts = [spec.scene, spec.style, *extra]
    for obj in spec.objects:
        texts += [obj.name, *obj.attributes]
    placed = {w for t in texts for w in TOKEN.findall(t.lower()) if w[0].isalpha()}
    return placed | {singular(w) for w in placed}


def _is_content(token: str) -> bool:
    if not token[0].isalpha() or any(c.isdigit() for c in token):
        return False
    if len(token) < 3 and token not in KNOWN_OBJECTS:
        return False
    verb_form = (len(token) > 4 and token.endswith(("ing", "ed")) and token not in ING_NOUNS
                 and token not in ATTRIBUTE_WORDS and token not in COLOURS)
    return not verb_form and token not in FUNCTION_WORDS and singular(token) not in FUNCTION_WORDS


def unplaced_words(text: str, spec: TaskSpec, *, also_placed: Iterable[str] = ()) -> list[str]:
    """Phrases of adjacent content words of `text` (the prepared request) that the spec does not carry."""
    spans = _understood_spans(text, spec)
    placed = _placed_words(spec, also_placed)
    phrases: list[list[str]] = []
    last = -2
    tokens = list(TOKEN.finditer(text))
    for index, m in enumerate(tokens):
        token = ALIASES.get(singular(m.group(0)), m.group(0))
        inside = any(a <= m.start() and m.end() <= b for a, b in spans)
        if inside or not _is_content(token) or token in placed or singular(token) in placed:
            continue
        if token in ATTRIBUTE_WORDS and index + 1 < len(tokens) and tokens[index + 1].group(0) in DATASET_NOUNS:
            continue  # "a small dataset" describes the request, not the objects
        if index == last + 1:
            phrases[-1].append(token)
        else:
            phrases.append([token])
        last = index
    return list(dict.fromkeys(" ".join(p) for p in phrases))


def not_understood_notices(phrases: list[str]) -> list[Notice]:
    """One `not_understood` notice per phrase (the last one gathers the rest beyond `MAX_NOTICES`)."""
    if len(phrases) > MAX_NOTICES:
        phrases = [*phrases[: MAX_NOTICES - 1], ", ".join(phrases[MAX_NOTICES - 1 :])]
    notices = []
    for phrase in phrases:
        unattached = all(w in COLOURS or w in ATTRIBUTE_WORDS for w in phrase.split())
        notices.append(Notice(kind="not_understood", text=phrase[:200], reason=NO_OBJECT if unattached else NOT_READ))
    return notices


def merge_notices(*groups: Iterable[Notice]) -> list[Notice]:
    """Notices in order, without repeats, at most `MAX_NOTICES` (cannot-deliver ones first)."""
    unique = list(dict.fromkeys(n for group in groups for n in group))
    unique.sort(key=lambda n: n.kind != "cannot_deliver")
    return unique[:MAX_NOTICES]
