"""An independent reader of referring expressions: parse a sentence back and find the object it denotes.

It shares nothing with the generator but the vocabulary constants, and applies its own, plain semantics:

    sentence  := ["the"] [extreme | ordinal | superlative] attribute* CATEGORY [tail] [relation]
    extreme   := leftmost | rightmost | topmost | bottommost          (rank 1 from that side)
    ordinal   := first … fifth, with the tail "from the left|right|top|bottom"
    superlative := largest | biggest | smallest                      (by box area, SIZE_RATIO apart)
    tail      := on the left | on the right | at the top | at the bottom | in the middle   (image thirds)
    relation  := ["that is" | "which is"] PREDICATE noun-phrase       (the noun phrase has no relation)

Candidates are the objects of the category whose attribute words include every attribute word of the
sentence (grammar words are never attributes); location, relation, then ordinal or superlative narrow them
down. A sentence denotes an object only when its readings that fit the image all leave exactly that one
object; no reading, a reading that leaves several objects, a second reading that points elsewhere, an
ordinal whose neighbours are too close to order, or a superlative without a clear winner all give None.

Spatial predicates are judged on visible boxes (and depth for in front of / behind):
left of: the subject's centre is left of the other's left edge and the centres differ more along x than y
(right of, above, below alike); near: box gap ≤ NEAR_FACTOR × sqrt(smaller box area); on: the subject's
centre is over the other horizontally, its top above the other's top and its bottom in the other's upper
60 % (or just touching it); under: the inverse; inside: box within box; in front of: boxes touch or overlap
and the subject is higher in depth order; behind: the inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from synthloop.tools.annotate.language.vocabulary import (
    EXTREME_WORDS,
    LARGEST_WORDS,
    LOCATION_PHRASES,
    NEAR_FACTOR,
    ORDINAL_DIRECTIONS,
    ORDINAL_MIN_GAP,
    ORDINAL_WORDS,
    PREDICATE_PHRASES,
    REGION_SPLITS,
    RESERVED_WORDS,
    SIZE_RATIO,
    SMALLEST_WORDS,
)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Referent:
    """One object a sentence may denote: class, attribute strings, visible box (pixel xyxy), depth."""

    category: str
    attributes: tuple[str, ...]
    box: Box
    depth: int | None = None


@dataclass(frozen=True)
class _Phrase:
    category: str
    modifiers: tuple[str, ...]
    location: str | None = None
    rank: tuple[str, int] | None = None  # (direction, 1-based rank)
    superlative: str | None = None  # "largest" | "smallest"
    predicate: str | None = None
    anchor: _Phrase | None = None


_LOCATIONS = {tuple(text.split()): region for region, text in LOCATION_PHRASES.items()}
_ORDINAL_TAILS = {tuple(text.split()): direction for direction, text in ORDINAL_DIRECTIONS.items()}
_EXTREMES = {word: direction for direction, word in EXTREME_WORDS.items()}
_PREDICATES = sorted(
    ((tuple(form.split()), predicate) for predicate, forms in PREDICATE_PHRASES.items() for form in forms),
    key=lambda item: -len(item[0]),
)


class Resolver:
    """Resolves sentences against the objects of one image (positions in `referents`)."""

    def __init__(self, referents: Sequence[Referent], width: int, height: int) -> None:
        self.referents = list(referents)
        self.width, self.height = width, height
        self._categories = sorted({tuple(r.category.split()) for r in self.referents}, key=len, reverse=True)
        self._words = [frozenset(w for a in r.attributes for w in a.lower().split()) for r in self.referents]

    def resolve(self, sentence: str) -> int | None:
        """The position of the one object `sentence` denotes, or None (unparsable, none, or several)."""
        tokens = sentence.lower().strip().rstrip(".").split()
        if tokens[:1] == ["the"]:
            tokens = tokens[1:]
        answers = set()
        for phrase in self._parse(tokens, allow_relation=True):
            found = self._denotes(phrase)
            if found is None or len(found) > 1:
                return None
            answers.update(found)  # a reading that denotes nothing is no reading of this image
        return answers.pop() if len(answers) == 1 else None

    # -- parsing ----------------------------------------------------------------------------------------------

    def _parse(self, tokens: list[str], *, allow_relation: bool) -> list[_Phrase]:
        """Every complete reading of `tokens` as a noun phrase (with at most one relation when allowed)."""
        if not tokens:
            return []
        rank_word, superlative, start = None, None, 0
        if tokens[0] in _EXTREMES or tokens[0] in ORDINAL_WORDS:
            rank_word, start = tokens[0], 1
        elif tokens[0] in LARGEST_WORDS or tokens[0] in SMALLEST_WORDS:
            superlative, start = ("largest" if tokens[0] in LARGEST_WORDS else "smallest"), 1
        readings = []
        for end_modifiers in range(start, len(tokens)):
            for category in self._categories:
                stop = end_modifiers + len(category)
                if tuple(tokens[end_modifiers:stop]) != category:
                    continue
                modifiers = tuple(tokens[start:end_modifiers])
                if any(w in RESERVED_WORDS for w in modifiers):
                    continue
                head = _Phrase(" ".join(category), modifiers, superlative=superlative)
                readings.extend(self._tails(head, rank_word, tokens[stop:], allow_relation))
        return readings

    def _tails(self, head: _Phrase, rank_word: str | None, rest: list[str], allow_relation: bool) -> list[_Phrase]:
        if rank_word in _EXTREMES:
            head = _Phrase(head.category, head.modifiers, rank=(_EXTREMES[rank_word], 1))
        elif rank_word is not None:
            tail = tuple(rest[:3])
            if tail not in _ORDINAL_TAILS:
                return []
            rank = (_ORDINAL_TAILS[tail], ORDINAL_WORDS.index(rank_word) + 1)
            head = _Phrase(head.category, head.modifiers, rank=rank)
            rest = rest[3:]
        elif tuple(rest[:3]) in _LOCATIONS:
            head = _Phrase(head.category, head.modifiers, location=_LOCATIONS[tuple(rest[:3])],
                           superlative=head.superlative)
            rest = rest[3:]
        if not rest:
            return [head]
        if not allow_relation:
            return []
        if rest[:2] in (["that", "is"], ["which", "is"]):
            rest = rest[2:]
        readings = []
        for form, predicate in _PREDICATES:
            if tuple(rest[: len(form)]) != form:
                continue
            anchor_tokens = rest[len(form) :]
            if anchor_tokens[:1] == ["the"]:
                anchor_tokens = anchor_tokens[1:]
            for anchor in self._parse(anchor_tokens, allow_relation=False):
                readings.append(_Phrase(head.category, head.modifiers, head.location, head.rank, head.superlative,
                                        predicate, anchor))
        return readings

    # -- meaning ----------------------------------------------------------------------------------------------

    def _denotes(self, phrase: _Phrase) -> list[int] | None:
        """Positions the phrase picks out; None when an ordinal or superlative cannot be decided."""
        found = [k for k, r in enumerate(self.referents)
                 if r.category == phrase.category and set(phrase.modifiers) <= self._words[k]]
        if phrase.location is not None:
            found = [k for k in found if self._in_region(self.referents[k].box, phrase.location)]
        if phrase.anchor is not None:
            anchors = self._denotes(phrase.anchor)
            if anchors is None or len(anchors) != 1 or phrase.predicate is None:
                return None
            anchor = self.referents[anchors[0]]
            found = [k for k in found if k != anchors[0] and _holds(phrase.predicate, self.referents[k], anchor)]
        if phrase.rank is not None:
            return self._ranked(found, *phrase.rank)
        if phrase.superlative is not None:
            return self._extreme_size(found, phrase.superlative)
        return found

    def _in_region(self, box: Box, region: str) -> bool:
        cx = (box[0] + box[2]) / 2 / self.width
        cy = (box[1] + box[3]) / 2 / self.height
        low, high = REGION_SPLITS
        return {
            "left": cx < low,
            "right": cx > high,
            "top": cy < low,
            "bottom": cy > high,
            "middle": low <= cx <= high and low <= cy <= high,
        }[region]

    def _ranked(self, found: list[int], direction: str, rank: int) -> list[int] | None:
        axis, side = (0, self.width) if direction in ("left", "right") else (1, self.height)
        centre = {k: (self.referents[k].box[axis] + self.referents[k].box[axis + 2]) / 2 for k in found}
        order = sorted(found, key=lambda k: centre[k], reverse=direction in ("right", "bottom"))
        if rank > len(order):
            return []
        pick = rank - 1
        neighbours = [order[i] for i in (pick - 1, pick + 1) if 0 <= i < len(order)]
        if any(abs(centre[order[pick]] - centre[n]) < ORDINAL_MIN_GAP * side for n in neighbours):
            return None
        return [order[pick]]

    def _extreme_size(self, found: list[int], which: str) -> list[int] | None:
        if len(found) < 2:
            return found
        areas = {k: _area(self.referents[k].box) for k in found}
        order = sorted(found, key=lambda k: areas[k], reverse=which == "largest")
        first, second = areas[order[0]], areas[order[1]]
        clear = first >= SIZE_RATIO * second if which == "largest" else second >= SIZE_RATIO * first
        return [order[0]] if clear else None


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _holds(predicate: str, a: Referent, b: Referent) -> bool:
    """The resolver's own reading of "a <predicate> b" on boxes and depth."""
    ax, ay = (a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2
    bx, by = (b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2
    dx, dy = bx - ax, by - ay
    b_height = b.box[3] - b.box[1]
    gap_x = max(0.0, b.box[0] - a.box[2], a.box[0] - b.box[2])
    gap_y = max(0.0, b.box[1] - a.box[3], a.box[1] - b.box[3])
    if predicate == "left of":
        return ax < b.box[0] and abs(dx) > abs(dy)
    if predicate == "right of":
        return ax > b.box[2] and abs(dx) > abs(dy)
    if predicate == "above":
        return ay < b.box[1] and abs(dy) > abs(dx)
    if predicate == "below":
        return ay > b.box[3] and abs(dy) > abs(dx)
    if predicate == "near":
        return (gap_x * gap_x + gap_y * gap_y) ** 0.5 <= NEAR_FACTOR * min(_area(a.box), _area(b.box)) ** 0.5
    if predicate == "on":
        return (a.box[1] < b.box[1] and b.box[0] <= ax <= b.box[2]
                and b.box[1] - 0.1 * b_height <= a.box[3] <= b.box[1] + 0.6 * b_height)
    if predicate == "under":
        return _holds("on", b, a)
    if predicate == "inside":
        return (a.box[0] >= b.box[0] - 1 and a.box[1] >= b.box[1] - 1
                and a.box[2] <= b.box[2] + 1 and a.box[3] <= b.box[3] + 1)
    if predicate in ("in front of", "behind"):
        front, back = (a, b) if predicate == "in front of" else (b, a)
        touching = gap_x <= 1.0 and gap_y <= 1.0
        return touching and front.depth is not None and back.depth is not None and front.depth > back.depth
    return False
