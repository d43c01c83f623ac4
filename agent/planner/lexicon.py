"""The planner's vocabulary, read from the data files in `vocabulary/` (package data, via importlib.resources).

Word lists (`*.txt`) hold one entry per line; `#` starts a comment line; an entry may have several words
("traffic light"). Tables (`*.json`) hold number words, irregular plurals, split names and the keyword
patterns of tasks, formats and difficulty, keyed by the values of the enums in `synthloop.tools.types`:
those enums are the one definition of task and format names, and `TaskName` / `FormatName` below (the
LLM schemas' literal types) are derived from them.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any, Literal

from synthloop.tools.types import Difficulty, ExportFormat, Task

VOCABULARY_PACKAGE = "synthloop.agent.planner"


class VocabularyError(ValueError):
    """A vocabulary data file is missing or malformed (a packaging error, not a user error)."""


def _read(name: str) -> str:
    try:
        return (resources.files(VOCABULARY_PACKAGE) / "vocabulary" / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise VocabularyError(f"planner vocabulary file {name} cannot be read: {exc}") from exc


@cache
def terms(name: str) -> tuple[str, ...]:
    """The entries of `vocabulary/{name}.txt` in file order, without comments and blank lines."""
    lines = (line.strip() for line in _read(f"{name}.txt").splitlines())
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("# ")))


def words(name: str) -> frozenset[str]:
    """The entries of `vocabulary/{name}.txt` as a set."""
    return frozenset(terms(name))


@cache
def table(name: str) -> dict[str, Any]:
    """`vocabulary/{name}.json` without its `_comment` key."""
    try:
        data = json.loads(_read(f"{name}.json"))
    except ValueError as exc:
        raise VocabularyError(f"planner vocabulary file {name}.json is not valid JSON: {exc}") from exc
    return {k: v for k, v in data.items() if k != "_comment"}


def _keyed(section: dict[str, str], enum: type, *, complete: bool) -> dict[Any, str]:
    """Patterns keyed by enum members (file order kept); unknown keys, or missing ones when `complete`, raise."""
    try:
        keyed = {enum(key): pattern for key, pattern in section.items()}
    except ValueError as exc:
        raise VocabularyError(f"planner patterns: {exc}") from exc
    missing = [m.value for m in enum if m not in keyed]
    if complete and missing:
        raise VocabularyError(f"planner patterns: no pattern for {enum.__name__} {missing}")
    return keyed


# Literal types of the LLM schemas, derived from the enums (one definition of the names).
TaskName = Literal[tuple(t.value for t in Task)]  # type: ignore[valid-type]
FormatName = Literal[tuple(f.value for f in ExportFormat)]  # type: ignore[valid-type]
DifficultyName = Literal[tuple(d.value for d in Difficulty)]  # type: ignore[valid-type]
TASK_LIST = ", ".join(t.value for t in Task)  # as the LLM prompts list them
FORMAT_LIST = ", ".join(f.value for f in ExportFormat)

_numbers = table("numbers")
UNITS: dict[str, int] = {w: i for i, w in enumerate(_numbers["units"])}
TENS: dict[str, int] = {w: 10 * (i + 2) for i, w in enumerate(_numbers["tens"])}
SCALES: dict[str, int] = dict(_numbers["scales"])
NUMBER_WORDS = frozenset({*UNITS, *TENS, *SCALES, "dozen"})
IRREGULAR_PLURALS: dict[str, str] = table("irregular_plurals")
SPLIT_NAMES: dict[str, str] = table("split_names")

_patterns = table("patterns")
TASK_PATTERNS: dict[Task, str] = _keyed(_patterns["tasks"], Task, complete=True)
WEAK_TASK_PATTERNS: dict[Task, str] = _keyed(_patterns["weak_tasks"], Task, complete=False)
FORMAT_PATTERNS: dict[ExportFormat, str] = _keyed(_patterns["formats"], ExportFormat, complete=False)
DIFFICULTY_PATTERNS: dict[Difficulty, str] = _keyed(_patterns["difficulty"], Difficulty, complete=True)

IMAGE_NOUNS = words("image_nouns")
COLOURS = words("colours")
COLOUR_MODIFIERS = words("colour_modifiers")
ATTRIBUTE_WORDS = words("attributes")
GENERIC = words("generic")
BLOCKED = words("blocked")
TASK_WORDS = words("task_words")
FORMAT_WORDS = words("format_words")
DIFFICULTY_WORDS = words("difficulty_words")
SCENE_NOUNS = words("scene_nouns")
GENERIC_PLACES = words("generic_places")
CLASS_COUNT_NOUNS = words("class_count_nouns")
LOCATIVE = words("locative")
INTRODUCERS = words("introducers")
SEPARATORS = words("separators")
STOPS = words("stops") | {"\n"}
ING_NOUNS = words("ing_nouns")
KNOWN_OBJECTS = words("known_objects")
FILLER = words("filler")
STYLE_TERMS = terms("style_terms")
# One alternation, longest term first, so 'night-time' wins over 'night' and 'photorealistic' over 'realistic'.
STYLE_PATTERN = "|".join(re.escape(t) for t in sorted(STYLE_TERMS, key=len, reverse=True))
# A word of a style term is a style word (never part of a class name or a place) when the term is that word, or
# when no other list knows it (or its singular): 'depth of field' makes 'depth' one, not 'of' or 'field'; "birds-eye"
# does not make 'birds' one.
_KNOWN_ELSEWHERE = (
    COLOURS | STOPS | SCENE_NOUNS | ATTRIBUTE_WORDS | GENERIC | LOCATIVE | INTRODUCERS | SEPARATORS | FILLER
    | {w for name in KNOWN_OBJECTS for w in name.split()}
)
STYLE_WORDS = frozenset(
    {term for term in STYLE_TERMS if " " not in term}  # 'night-time' is one token
    | {w for term in STYLE_TERMS for w in term.replace("-", " ").split() if " " not in term.replace("-", " ")}
    | {w for term in STYLE_TERMS for w in term.replace("-", " ").split()
       if w not in _KNOWN_ELSEWHERE and w.removesuffix("s") not in _KNOWN_ELSEWHERE}
    | {"photorealistic"}
)
SURFACES = words("surfaces")
STANDALONE_SCENES = terms("standalone_scenes")
CORRECTIONS = terms("corrections")
TYPO_KEYWORDS = terms("typo_keywords")
NOT_OBJECT_MODIFIERS = words("not_object_modifiers")
TASK_FOLLOWERS = words("task_followers")
WEARING = words("wearing")

# Words that cannot modify a noun as part of its name ("cereal" in "cereal box" can; "three", "with" cannot).
NOT_A_MODIFIER = (
    STOPS | GENERIC | STYLE_WORDS | SEPARATORS | NUMBER_WORDS | INTRODUCERS | BLOCKED | IMAGE_NOUNS | TASK_WORDS
    | FORMAT_WORDS | DIFFICULTY_WORDS | LOCATIVE
)
# Every word some reader knows (typo correction leaves these alone; the LLM is not asked about them).
VOCABULARY = frozenset().union(
    IMAGE_NOUNS, COLOURS, ATTRIBUTE_WORDS, GENERIC, BLOCKED, TASK_WORDS, FORMAT_WORDS, DIFFICULTY_WORDS,
    STYLE_WORDS, SCENE_NOUNS, INTRODUCERS, STOPS, ING_NOUNS, NUMBER_WORDS,
    {w for name in KNOWN_OBJECTS for w in name.split()}, IRREGULAR_PLURALS,
)
