"""Words and thresholds shared by the language generators, the referring-expression resolver and the checkers.

Only constants (and the two word-form helpers every English generator needs) live here: the resolver and
the caption checker share these with the generators and nothing else, so each reads the sentences back on
its own terms.
"""

from __future__ import annotations

import re

# -- spatial predicates ---------------------------------------------------------------------------------------

LEFT_OF, RIGHT_OF, ABOVE, BELOW = "left of", "right of", "above", "below"
ON, UNDER, NEAR, INSIDE = "on", "under", "near", "inside"
IN_FRONT_OF, BEHIND = "in front of", "behind"

SPATIAL_PREDICATES: tuple[str, ...] = (
    ON, UNDER, INSIDE, IN_FRONT_OF, BEHIND, LEFT_OF, RIGHT_OF, ABOVE, BELOW, NEAR,
)  # fmt: skip
# How a predicate may be written in a sentence (the first form is the one generators use by default).
PREDICATE_PHRASES: dict[str, tuple[str, ...]] = {
    LEFT_OF: ("left of", "to the left of"),
    RIGHT_OF: ("right of", "to the right of"),
    ABOVE: ("above",),
    BELOW: ("below", "beneath"),
    ON: ("on", "on top of"),
    UNDER: ("under", "underneath"),
    NEAR: ("near", "next to", "close to"),
    INSIDE: ("inside", "within"),
    IN_FRONT_OF: ("in front of",),
    BEHIND: ("behind",),
}
# Other wordings of spatial predicates that models produce, mapped onto the canonical predicate.
PREDICATE_SYNONYMS: dict[str, str] = {
    "to the left of": LEFT_OF, "on the left of": LEFT_OF, "left": LEFT_OF,
    "to the right of": RIGHT_OF, "on the right of": RIGHT_OF, "right": RIGHT_OF,
    "over": ABOVE, "on top of": ON, "resting on": ON, "lying on": ON, "standing on": ON, "sitting on top of": ON,
    "beneath": UNDER, "underneath": UNDER, "below of": BELOW,
    "next to": NEAR, "close to": NEAR, "beside": NEAR, "by": NEAR, "near to": NEAR,
    "in": INSIDE, "within": INSIDE, "inside of": INSIDE,
    "in back of": BEHIND, "in front": IN_FRONT_OF,
}  # fmt: skip

# -- positions in the image -----------------------------------------------------------------------------------

# A centre left of REGION_SPLITS[0] × width is "on the left", right of REGION_SPLITS[1] × width "on the right";
# the same along the height for "at the top" / "at the bottom"; inside both middle bands: "in the middle".
REGION_SPLITS = (1 / 3, 2 / 3)
LOCATION_PHRASES: dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "middle": "in the middle",
}
# Ordinal references ("the second cup from the left"): direction word → the phrase after the noun.
ORDINAL_DIRECTIONS: dict[str, str] = {
    "left": "from the left",
    "right": "from the right",
    "top": "from the top",
    "bottom": "from the bottom",
}
EXTREME_WORDS: dict[str, str] = {"left": "leftmost", "right": "rightmost", "top": "topmost", "bottom": "bottommost"}
ORDINAL_WORDS: tuple[str, ...] = ("first", "second", "third", "fourth", "fifth")
# Neighbours in an ordering closer than this fraction of the image side make an ordinal ambiguous.
ORDINAL_MIN_GAP = 0.02
LARGEST_WORDS: tuple[str, ...] = ("largest", "biggest")
SMALLEST_WORDS: tuple[str, ...] = ("smallest",)
# "the largest cup" needs the largest box to be at least this many times the second largest.
SIZE_RATIO = 1.3
# Two objects are "near" when the gap between them is at most this × sqrt(smaller box area) (resolver scale).
NEAR_FACTOR = 0.5

# Words a sentence's grammar uses; attributes containing one of them are never put into a sentence.
RESERVED_WORDS: frozenset[str] = frozenset(
    {"the", "a", "an", "that", "which", "is", "of", "to", "from", "on", "at", "in", "top", "bottom", "left",
     "right", "middle", "and", "with", "no", "one", *ORDINAL_WORDS, *EXTREME_WORDS.values(), *LARGEST_WORDS,
     *SMALLEST_WORDS, *(w for p in PREDICATE_PHRASES.values() for phrase in p for w in phrase.split())}
)

# -- numbers and word forms -----------------------------------------------------------------------------------

NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
# Determiners that claim "more than one" without a number.
PLURAL_QUANTIFIERS: frozenset[str] = frozenset({"several", "many", "multiple", "some", "few", "various", "numerous"})
SINGULAR_ARTICLES: frozenset[str] = frozenset({"a", "an", "one", "single", "another"})
GENERIC_NOUNS: frozenset[str] = frozenset({"object", "objects", "item", "items", "thing", "things"})

_IRREGULAR_PLURALS = {
    "person": "people", "mouse": "mice", "knife": "knives", "leaf": "leaves", "child": "children",
    "man": "men", "woman": "women", "foot": "feet", "tooth": "teeth", "goose": "geese", "wolf": "wolves",
    "loaf": "loaves", "shelf": "shelves", "sheep": "sheep", "deer": "deer", "fish": "fish", "skis": "skis",
    "scissors": "scissors", "glasses": "glasses", "series": "series", "moose": "moose",
}  # fmt: skip


def plural(name: str) -> str:
    """The plural of a class name; multi-word names inflect their last word ("wine glass" → "wine glasses")."""
    head, _, last = name.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        word = _IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def number_word(n: int) -> str:
    """"two" for 2 … "twenty" for 20, digits above."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def indefinite_article(word: str) -> str:
    """"an" before a vowel sound (by spelling), else "a"."""
    return "an" if word[:1] in "aeiou" else "a"


# -- attributes and classes -----------------------------------------------------------------------------------

COLOUR_WORDS: frozenset[str] = frozenset(
    {"red", "green", "blue", "yellow", "orange", "purple", "violet", "pink", "magenta", "brown", "black", "white",
     "gray", "grey", "silver", "gold", "golden", "cyan", "teal", "turquoise", "navy", "maroon", "olive", "lime",
     "beige", "tan"}
)
TONE_WORDS: frozenset[str] = frozenset({"light", "dark", "pale", "deep", "bright", "pastel"})
MATERIAL_WORDS: frozenset[str] = frozenset(
    {"wooden", "metal", "metallic", "plastic", "glass", "ceramic", "paper", "leather", "stone", "striped",
     "spotted", "checkered", "dotted", "plain", "shiny", "matte", "transparent"}
)

_WORD = re.compile(r"^[a-z][a-z\-]*$")


def sentence_attribute(attribute: str) -> str | None:
    """An attribute as it may appear before a noun ("light blue"), or None when it cannot (too long, digits,
    punctuation, or a word the referring grammar reserves, such as "left")."""
    words = attribute.lower().split()
    if not 1 <= len(words) <= 3 or not all(_WORD.match(w) for w in words):
        return None
    if any(w in RESERVED_WORDS for w in words):
        return None
    return " ".join(words)
