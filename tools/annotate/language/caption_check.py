"""Checks a caption (template, LLM paraphrase or VLM caption) against what the image really holds.

A caption fails when it
- mentions a known class (the spec's classes, the 80 COCO classes) with no visible instance ("a fork"),
  unless it says there is none ("no forks");
- claims a count the image does not have: a number ("two cups", "3 cups"), an article ("a cup" = one), "no"
  (= none), or a plural without a number ("cups", "several cups" = more than one); a claim about "red cups"
  counts the visible cups that are red; "three objects" counts every visible object;
- gives a class an attribute word that no visible instance of that class has ("a blue cup"), or uses an
  attribute word (a colour, or any word of the spec's attributes) that no visible object has at all.
The scene and style texts of the spec may be declared allowed: they are cut out before checking (a caption
generator checks them once on their own, and uses them only if they pass).

Reading: a class phrase directly followed by another class noun is a modifier, not a mention ("orange cup");
the words before a mention, back to the first determiner or connecting word, are its modifiers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from synthloop.tools.annotate.language.vocabulary import (
    COLOUR_WORDS,
    GENERIC_NOUNS,
    MATERIAL_WORDS,
    NUMBER_WORDS,
    PLURAL_QUANTIFIERS,
    SINGULAR_ARTICLES,
    TONE_WORDS,
    plural,
)
from synthloop.tools.class_names import COCO_CLASSES

_TOKEN = re.compile(r"[a-z0-9][a-z0-9\-']*|[.,;:!?()|\"]")
_DETERMINERS = frozenset(
    {*NUMBER_WORDS, *PLURAL_QUANTIFIERS, *SINGULAR_ARTICLES, "the", "no", "this", "these", "those", "its",
     "their", "both", "each", "every", "any", "all", "that"}
)
_CONNECTORS = frozenset(
    {"and", "or", "with", "of", "in", "on", "at", "near", "beside", "by", "to", "from", "is", "are", "was", "were",
     "there", "has", "have", "next", "behind", "under", "above", "below", "left", "right", "top", "bottom",
     "middle", "front", "inside", "over", "while", "plus", "as", "for", "against", "into", "onto", "between",
     "showing", "shows", "featuring", "holding", "beneath", "around", "along", "across", "than"}
)
_MAX_MODIFIERS = 4
AT_LEAST_TWO = -2  # count claim: "more than one"


@dataclass(frozen=True)
class CaptionFacts:
    """What the image holds: per class the attribute words of each visible instance; the known class names;
    attribute words worth checking; texts cut out before checking (scene, style)."""

    instances: dict[str, list[frozenset[str]]]
    known_classes: frozenset[str]
    attribute_words: frozenset[str]
    allowed_text: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> Counter[str]:
        """Visible instances per class."""
        return Counter({c: len(v) for c, v in self.instances.items() if v})

    def with_allowed(self, *texts: str) -> CaptionFacts:
        """The same facts with `texts` (non-empty ones) cut out of captions before checking."""
        return CaptionFacts(self.instances, self.known_classes, self.attribute_words,
                            tuple(t for t in texts if t.strip()))


def caption_facts(
    visible: Iterable[tuple[str, Sequence[str]]], class_names: Iterable[str] = (), extra_attributes: Iterable[str] = ()
) -> CaptionFacts:
    """Facts from (class, attribute strings) per visible instance, the spec's class names and any attribute
    strings the spec defines (their words are checked even when no visible object has them)."""
    instances: dict[str, list[frozenset[str]]] = {}
    words: set[str] = set(COLOUR_WORDS)
    for category, attributes in visible:
        own = frozenset(w for a in attributes for w in a.lower().split())
        instances.setdefault(category, []).append(own)
        words |= own
    for attribute in extra_attributes:
        words |= set(attribute.lower().split())
    words -= _DETERMINERS | _CONNECTORS
    known = frozenset({*COCO_CLASSES, *class_names, *instances})
    return CaptionFacts(instances=instances, known_classes=known, attribute_words=frozenset(words))


@dataclass(frozen=True)
class _Mention:
    category: str
    plural: bool
    start: int
    end: int


class _ClassIndex:
    """Class phrases (singular and plural token sequences) by first token, longest first."""

    def __init__(self, classes: Iterable[str]) -> None:
        self.phrases: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}
        for name in classes:
            for form, is_plural in ((name, False), (plural(name), True)):
                tokens = tuple(form.split())
                self.phrases.setdefault(tokens[0], []).append((tokens, name, is_plural and form != name))
        for options in self.phrases.values():
            options.sort(key=lambda item: -len(item[0]))

    def match(self, tokens: list[str], i: int) -> tuple[str, bool, int] | None:
        for phrase, name, is_plural in self.phrases.get(tokens[i], ()):
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                return name, is_plural, i + len(phrase)
        return None


def check_caption(text: str, facts: CaptionFacts) -> list[str]:
    """Problems of `text` against `facts` (empty when the caption is faithful)."""
    lowered = text.lower()
    for allowed in sorted(facts.allowed_text, key=len, reverse=True):
        lowered = lowered.replace(allowed.lower().strip().rstrip("."), " | ")
    tokens = _TOKEN.findall(lowered)
    index = _ClassIndex(facts.known_classes)
    mentions, consumed = _mentions(tokens, index)
    problems = []
    for m in mentions:
        problems.extend(_check_mention(tokens, m, facts))
    problems.extend(_check_generic_counts(tokens, facts))
    present = set().union(*(w for ws in facts.instances.values() for w in ws)) if facts.instances else set()
    for i, token in enumerate(tokens):
        if i not in consumed and token in facts.attribute_words and token not in present:
            problems.append(f"'{token}': no visible object has that attribute")
    return list(dict.fromkeys(problems))


def _mentions(tokens: list[str], index: _ClassIndex) -> tuple[list[_Mention], set[int]]:
    mentions, consumed, i = [], set(), 0
    while i < len(tokens):
        found = index.match(tokens, i)
        if found is None:
            i += 1
            continue
        name, is_plural, end = found
        if end < len(tokens) and (index.match(tokens, end) is not None or tokens[end] in GENERIC_NOUNS):
            i += 1  # a noun modifying the next noun ("orange cup"): the next mention reads it as a modifier
            continue
        mentions.append(_Mention(name, is_plural, i, end))
        consumed.update(range(i, end))
        i = end
    return mentions, consumed


def _determiner_and_modifiers(tokens: list[str], start: int) -> tuple[str | None, list[str]]:
    modifiers: list[str] = []
    for j in range(start - 1, -1, -1):
        token = tokens[j]
        if token in _DETERMINERS or token.isdigit():
            return token, modifiers
        if not token[0].isalnum() or token in _CONNECTORS or len(modifiers) >= _MAX_MODIFIERS:
            return None, modifiers
        modifiers.append(token)
    return None, modifiers


def _claim(determiner: str | None, is_plural: bool) -> int | None:
    """The count a determiner claims: a number, AT_LEAST_TWO, or None (no claim)."""
    if determiner is None:
        return AT_LEAST_TWO if is_plural else None
    if determiner.isdigit():
        return int(determiner)
    if determiner in NUMBER_WORDS:
        return NUMBER_WORDS.index(determiner)
    if determiner in ("a", "an", "one", "single"):
        return 1
    if determiner == "no":
        return 0
    if determiner == "both":
        return 2
    if determiner in PLURAL_QUANTIFIERS:
        return AT_LEAST_TWO
    return None


def _check_mention(tokens: list[str], m: _Mention, facts: CaptionFacts) -> list[str]:
    determiner, modifiers = _determiner_and_modifiers(tokens, m.start)
    claim = _claim(determiner, m.plural)
    seen = facts.instances.get(m.category, [])
    attributes = [w for w in modifiers if w in facts.attribute_words or w in TONE_WORDS or w in MATERIAL_WORDS]
    problems = []
    if not seen:
        if claim != 0:
            problems.append(f"mentions '{m.category}', which is not in the image")
        return problems
    for word in attributes:
        if not any(word in own for own in seen):
            problems.append(f"calls a {m.category} '{word}', but no visible {m.category} is")
    matching = sum(1 for own in seen if set(attributes) <= own)
    what = " ".join([*reversed(attributes), m.category])
    if claim == AT_LEAST_TWO and matching < 2:
        problems.append(f"says several {what} but the image has {matching}")
    elif claim is not None and claim >= 0 and claim != matching:
        problems.append(f"says {claim} {what} but the image has {matching}")
    return problems


def _check_generic_counts(tokens: list[str], facts: CaptionFacts) -> list[str]:
    total = sum(facts.counts.values())
    problems = []
    for i, token in enumerate(tokens):
        if token not in GENERIC_NOUNS or i == 0:
            continue
        before = tokens[i - 1]
        claim = _claim(before, token.endswith("s")) if (before in _DETERMINERS or before.isdigit()) else None
        if claim is not None and claim >= 0 and claim != total:
            problems.append(f"says {claim} {token} but the image has {total}")
    return problems
