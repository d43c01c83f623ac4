"""Class phrases: which spans of the request name object classes, with their attributes and per-image counts.

Readers, each returning `Candidate`s (class name, token position, attributes, count):
- `list_candidates`: classes enumerated after an introducer ('with 2-5 cups, red plates and forks');
- `known_candidates`: known object nouns anywhere outside place phrases ('detect cars', 'dog images');
- `plural_place_objects`: things after on/in that are not places ('license plates on cars');
- `image_noun_modifiers`: 'kitchen scenes' (a scene) and 'dog images' (a class);
- `ground_llm_classes`: LLM-proposed classes kept only when they are spans of the request.
`merge_candidates` unites them (one per name, in order of first mention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from synthloop.agent.planner.fields import ALIASES
from synthloop.agent.planner.lexicon import (
    ATTRIBUTE_WORDS,
    BLOCKED,
    COLOUR_MODIFIERS,
    COLOURS,
    DIFFICULTY_WORDS,
    FORMAT_WORDS,
    GENERIC,
    IMAGE_NOUNS,
    ING_NOUNS,
    INTRODUCERS,
    KNOWN_OBJECTS,
    LOCATIVE,
    NOT_A_MODIFIER,
    NUMBER_WORDS,
    SCENE_NOUNS,
    SEPARATORS,
    STOPS,
    STYLE_WORDS,
    SURFACES,
    TASK_WORDS,
)
from synthloop.agent.planner.numbers import digit_value, parse_count
from synthloop.agent.planner.text import TOKEN, is_punct, normalise, singular


@dataclass
class Candidate:
    name: str
    position: int
    attributes: list[str] = field(default_factory=list)
    count: tuple[int, int] | None = None


def phrase_to_class(words: list[str], *, stuff_ok: bool = False) -> tuple[str, list[str], bool] | None:
    """(class name, attributes, plural) for a noun phrase, or None when it names no object class."""
    attrs: list[str] = []
    rest: list[str] = []
    k = 0
    while k < len(words):
        w = words[k]
        nxt = words[k + 1] if k + 1 < len(words) else ""
        if w in COLOUR_MODIFIERS and nxt in COLOURS:
            attrs.append(f"{w} {nxt}")
            k += 2
            continue
        is_head = k == len(words) - 1
        leading_participle = not is_head and not rest and w.endswith("ed") and len(w) > 4
        if (w in COLOURS and not (is_head and w in KNOWN_OBJECTS)) or w in ATTRIBUTE_WORDS or leading_participle:
            attrs.append(w)
        elif w not in GENERIC and digit_value(w) is None and w not in NUMBER_WORDS:
            rest.append(w)
        k += 1
    # Trailing participles ("cars parked", "dogs running") are not part of the name.
    while rest and rest[-1].endswith(("ing", "ed")) and len(rest[-1]) > 4 and rest[-1] not in ING_NOUNS:
        rest.pop()
    if not rest:
        return None
    if len(rest) > 3:
        rest = rest[-2:]
    head = rest[-1]
    blocked = BLOCKED | TASK_WORDS | FORMAT_WORDS | DIFFICULTY_WORDS | IMAGE_NOUNS | STYLE_WORDS
    if any(w in blocked or (w in SCENE_NOUNS and not stuff_ok) or w in NUMBER_WORDS for w in rest):
        return None
    name = " ".join([*rest[:-1], singular(head)])
    name = re.sub(r"[^a-z0-9 \-]", "", name).strip(" -")
    if not name or len(name) > 48 or not name[0].isalnum():
        return None
    return name, attrs, singular(head) != head


def _item_end(tokens: list[str], i: int) -> int:
    j = i
    while j < len(tokens) and j - i < 6:
        t = tokens[j]
        if t in SEPARATORS or t in STOPS or t in INTRODUCERS or is_punct(t):
            break
        if t in TASK_WORDS or t in FORMAT_WORDS or t in IMAGE_NOUNS:
            break
        j += 1
    return j


def _opens_list(tokens: list[str], i: int) -> bool:
    """An image, task or format word directly followed by a content word: '… images trash bins and benches'
    (a request and the answer to 'which objects?' joined), 'detection of' is handled by 'of' itself."""
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    return (tokens[i] in IMAGE_NOUNS or tokens[i] in TASK_WORDS or tokens[i] in FORMAT_WORDS) and (
        nxt[:1].isalpha() and nxt not in NOT_A_MODIFIER and singular(nxt) not in NOT_A_MODIFIER
    )


def list_candidates(tokens: list[str], *, stuff_ok: bool = False) -> list[Candidate]:
    """Classes enumerated after an introducer: 'with 2-5 cups, red plates and forks'. After a colon, or an
    image, task or format word, only plural nouns, known objects and counted items are read ('classes: cups,
    plates', 'images trash bins', not 'images taken at night')."""
    found: list[Candidate] = []
    for i, tok in enumerate(tokens):
        strict = tok not in INTRODUCERS
        if strict and tok != ":" and not _opens_list(tokens, i):
            continue
        found += read_list(tokens, i + 1, strict=strict, stuff_ok=stuff_ok)
    return found


def bare_list_candidates(tokens: list[str], *, stuff_ok: bool = False) -> list[Candidate]:
    """Lists of two or more plural nouns with no introducer, at the start of a clause: '… please strollers,
    wheelchairs and shopping carts on a sidewalk' (the answer to 'which objects?' joined to the request)."""
    found: list[Candidate] = []
    for i, tok in enumerate(tokens):
        before = tokens[i - 1] if i > 0 else ","
        starts_clause = is_punct(before) or before in BLOCKED or before in GENERIC or before in IMAGE_NOUNS
        if tok[:1].isalpha() and starts_clause and tok not in NOT_A_MODIFIER:
            items = read_list(tokens, i, strict=True, stuff_ok=stuff_ok)
            if len(items) >= 2:
                found += items
    return found


def read_list(tokens: list[str], j: int, *, strict: bool, stuff_ok: bool = False) -> list[Candidate]:
    """The enumeration of noun phrases starting at token j, up to the first item that is not one. `strict`
    keeps only plural nouns, known objects and counted items."""
    found: list[Candidate] = []
    pending_attrs: list[str] = []
    while j < len(tokens):
        count = parse_count(tokens, j)
        article = tokens[j] in ("a", "an", "one")
        k = count[2] if count else j
        end = _item_end(tokens, k)
        words = tokens[k:end]
        if count is None and not words:
            break
        parsed = phrase_to_class(words, stuff_ok=stuff_ok) if words else None
        if parsed is None and words and all(w in COLOURS or w in ATTRIBUTE_WORDS for w in words):
            pending_attrs += words  # "red and blue cars": colours waiting for their noun
        elif parsed is None and words:
            break  # not a noun phrase: the enumeration is over
        elif parsed is not None:
            name, attrs, plural = parsed
            if strict and not (plural or count or name in KNOWN_OBJECTS):
                break
            if count is None and article and not plural:
                count = (1, 1, k)
            cnt = (count[0], count[1]) if count else None
            found.append(Candidate(name, k, [*pending_attrs, *attrs], cnt))
            pending_attrs = []
        j = end
        if j < len(tokens) and tokens[j] in SEPARATORS:
            j += 1
            if j < len(tokens) and tokens[j] in ("and", "or"):  # Oxford comma
                j += 1
            continue
        break
    return found


def locative_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Token spans of place phrases: 'on a kitchen table', 'in a park'."""
    spans = []
    for i, tok in enumerate(tokens):
        if tok not in LOCATIVE:
            continue
        j = i + 1
        while j < len(tokens) and j - i <= 5:
            t = tokens[j]
            if is_punct(t) or t in SEPARATORS or t in INTRODUCERS or t in STOPS:
                break
            j += 1
        content = [t for t in tokens[i + 1 : j] if t not in ("a", "an", "the")]
        if content and not any(
            t in BLOCKED or t in TASK_WORDS or t in FORMAT_WORDS or t in IMAGE_NOUNS or t in GENERIC
            or t in STYLE_WORDS or digit_value(t) is not None or t in NUMBER_WORDS
            for t in content
        ):  # fmt: skip
            spans.append((i, j))
    return spans


def lookback(tokens: list[str], start: int) -> tuple[list[str], tuple[int, int] | None]:
    """Attributes and a count written just before a class occurrence ('three red apples')."""
    attrs: list[str] = []
    k = start - 1
    while k >= 0:
        if tokens[k] in COLOURS or tokens[k] in ATTRIBUTE_WORDS:
            attrs.insert(0, tokens[k])
        elif tokens[k] in COLOUR_MODIFIERS and attrs and attrs[0] in COLOURS:
            attrs[0] = f"{tokens[k]} {attrs[0]}"
        elif not (tokens[k] in ("and", "or", ",") and k > 0 and tokens[k - 1] in COLOURS):  # "red and blue"
            break
        k -= 1
    for back in range(min(k + 1, 5), 0, -1):
        count = parse_count(tokens, k + 1 - back)
        if count and count[2] == k + 1:
            return attrs, (count[0], count[1])
    if k >= 0 and tokens[k] in ("a", "an") and singular(tokens[start]) == tokens[start]:
        return attrs, (1, 1)
    return attrs, None


def occurrences(tokens: list[str], name: str) -> list[int]:
    """Token indices where a class name (singular or plural head) occurs as a whole-word span."""
    words = name.split()
    n = len(words)
    hits = []
    for i in range(len(tokens) - n + 1):
        if tokens[i : i + n - 1] == words[:-1] and singular(tokens[i + n - 1]) == words[-1]:
            hits.append(i)
    return hits


def in_spans(index: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < index < b for a, b in spans)


def _is_noun_modifier(token: str) -> bool:
    """A word that can modify a noun as part of its name ('cereal' in 'cereal box'), not an attribute."""
    return (
        token[:1].isalpha() and token not in NOT_A_MODIFIER and token not in COLOURS
        and token not in ATTRIBUTE_WORDS and not token.endswith("ed")
    )  # fmt: skip


def known_candidates(tokens: list[str], place_spans: list[tuple[int, int]]) -> list[Candidate]:
    """Known object nouns anywhere outside place phrases ('detect cars', 'dog images')."""
    found = []
    i = 0
    while i < len(tokens):
        bigram = f"{tokens[i]} {singular(tokens[i + 1])}" if i + 1 < len(tokens) else ""
        if bigram in KNOWN_OBJECTS:
            name, width = bigram, 2
        else:
            name, width = singular(tokens[i]), 1
        nxt = singular(tokens[i + width]) if i + width < len(tokens) else ""
        is_modifier = nxt in KNOWN_OBJECTS or (
            tokens[i] in COLOURS and nxt[:1].isalpha() and nxt not in STOPS | SEPARATORS | INTRODUCERS
        )
        if name in KNOWN_OBJECTS and not is_modifier and not in_spans(i, place_spans):
            if name in ALIASES and i > 0 and _is_noun_modifier(tokens[i - 1]):  # "cereal boxes"
                name, i = f"{tokens[i - 1]} {name}", i - 1
                width += 1
            attrs, count = lookback(tokens, i)
            found.append(Candidate(name, i, attrs, count))
        i += width
    return found


def plural_place_objects(tokens: list[str], spans: list[tuple[int, int]], stuff_ok: bool) -> list[Candidate]:
    """Bare plural nouns after on/in that are things, not places: 'license plates on cars', 'oranges in crates'."""
    found = []
    for span in list(spans):
        a, b = span
        content = tokens[a + 1 : b]
        if tokens[a] not in ("on", "in", "inside", "atop") or not content or content[0] in ("a", "an", "the"):
            continue
        head = content[-1]
        if singular(head) == head or head in SURFACES or head in SCENE_NOUNS or head in STYLE_WORDS:
            continue
        parsed = phrase_to_class(content, stuff_ok=stuff_ok)
        if parsed is not None:
            found.append(Candidate(parsed[0], a + 1, parsed[1]))
            spans.remove(span)
    return found


def purpose_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """'for a robot arm', 'for my warehouse app': what a dataset is for, not what is in it."""
    spans = []
    for i, tok in enumerate(tokens[:-1]):
        if tok == "for" and tokens[i + 1] in ("a", "an", "my", "our", "the", "their"):
            j = i + 2
            while j < len(tokens) and not (is_punct(tokens[j]) or tokens[j] in STOPS or tokens[j] in INTRODUCERS):
                j += 1
            spans.append((i, j))
    return spans


def image_noun_modifiers(tokens: list[str]) -> tuple[list[str], list[Candidate], set[int]]:
    """'kitchen scenes', 'living room images' → scene phrases (and their token positions); 'dog images' → the
    class dog."""
    scene_phrases: list[str] = []
    positions: set[int] = set()
    classes: list[Candidate] = []
    for j, tok in enumerate(tokens):
        if tok not in IMAGE_NOUNS or (j + 1 < len(tokens) and tokens[j + 1] in ("graph", "graphs")):
            continue
        k, words = j - 1, []
        while k >= 0 and j - k <= 2 and tokens[k][0].isalpha() and tokens[k] not in NOT_A_MODIFIER:
            words.insert(0, tokens[k])
            k -= 1
        if not words:
            continue
        if tok not in ("scene", "scenes") and singular(words[-1]) in KNOWN_OBJECTS:
            classes.append(Candidate(singular(words[-1]), j - 1))
            words = words[:-1]
        if words:
            scene_phrases.append(" ".join(words))
            positions.update(range(k + 1, k + 1 + len(words)))
    return scene_phrases, classes, positions


def merge_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per class name, in order of first mention; attributes united, first count kept."""
    merged: dict[str, Candidate] = {}
    for cand in sorted(candidates, key=lambda c: c.position):
        if cand.name in merged:
            first = merged[cand.name]
            first.attributes = list(dict.fromkeys([*first.attributes, *cand.attributes]))
            first.count = first.count or cand.count
        else:
            merged[cand.name] = Candidate(cand.name, cand.position, list(dict.fromkeys(cand.attributes)), cand.count)
    # A one-word class that is the head of a longer one ("light" vs "traffic light") is the same object.
    names = list(merged)
    for name in names:
        if any(other != name and other.endswith(" " + name) for other in names):
            merged.pop(name, None)
    return list(merged.values())


def ground_llm_classes(tokens: list[str], proposed: list[str], place_spans: list[tuple[int, int]]) -> list[Candidate]:
    found = []
    for raw in proposed:
        words = TOKEN.findall(normalise(raw))
        parsed = phrase_to_class([w for w in words if w[0].isalnum() and w not in SEPARATORS | STOPS | INTRODUCERS])
        if parsed is None:
            continue
        name = parsed[0]
        hits = [h for h in occurrences(tokens, name) if not in_spans(h, place_spans)]
        if not hits and " " in name:  # "red car" → "car" is still a span
            name = name.split()[-1]
            hits = [h for h in occurrences(tokens, name) if not in_spans(h, place_spans)]
        if hits:
            attrs, count = lookback(tokens, hits[0])
            found.append(Candidate(name, hits[0], attrs, count))
    return found
