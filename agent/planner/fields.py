"""Deterministic readers for request fields the main grounding pass does not cover, and text pre-passes.

- `fix_typos`: one-edit typos of keywords ("imgaes", "boudning", "formt", "captoins") and doubled letters or
  swapped letters in known object nouns ("cupps", "platess") are corrected before anything else reads the text;
- `mark_object_nouns`: "cardboard boxes" or "face masks" name objects, while "boxes" / "masks" alone name
  annotation tasks; object uses are rewritten to private tokens the class reader keeps (`restore_alias`
  turns them back into "box" / "mask");
- `extract_splits`: "70/20/10", "80/10/10 split", "90/10 train/val", "10% validation", "20% test",
  "60% train, 20% val, 20% test";
- `extract_seed`: "seed 42", "random seed=7", "seed: 3".
All functions take the normalised (lower-case) request text and never raise on odd input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synthloop.agent.planner.lexicon import NOT_OBJECT_MODIFIERS, SPLIT_NAMES, TASK_FOLLOWERS, TYPO_KEYWORDS, WEARING

# Private stand-ins for object uses of task words; they survive tokenisation and singularisation.
ALIASES = {"boxobj": "box", "maskobj": "mask"}
_ALIAS_OF = {"box": "boxobj", "mask": "maskobj"}

def _edits1(word: str) -> set[str]:
    """Words one typo away: swapped neighbours, one letter missing or extra; a wrong letter only in long words."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b for a, b in splits for c in letters}
    if len(word) >= 8:
        edits |= {a + c + b[1:] for a, b in splits if b for c in letters}
    return edits


def _near_object(word: str, objects: frozenset[str] | set[str]) -> str | None:
    """A known object noun `word` is a swapped-letter or doubled-letter typo of (plural kept)."""
    plural = word.endswith("s")
    stem = word.rstrip("s") if plural else word
    candidates = {stem[:i] + stem[i + 1] + stem[i] + stem[i + 2 :] for i in range(len(stem) - 1)}
    candidates |= {stem[:i] + stem[i + 1 :] for i in range(1, len(stem)) if stem[i] == stem[i - 1]}
    for cand in sorted(candidates):
        if cand in objects:
            return cand + ("s" if plural else "")
    return None


def fix_typos(text: str, vocabulary: set[str], objects: frozenset[str] | set[str]) -> str:
    """Correct one-edit typos of keywords and swapped/doubled letters in object nouns.

    Only words of five or more letters that no vocabulary knows are touched, so real words stay as written.
    """

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if len(word) < 5 or word in vocabulary or (word.endswith("s") and word[:-1] in vocabulary):
            return word
        keyword = sorted(w for w in TYPO_KEYWORDS if len(w) >= 5 and w in _edits1(word))
        if keyword:
            return keyword[0]
        near = _near_object(word, objects)
        if near is None and word.endswith("ss"):  # "platess"
            near = _near_object(word[:-1], objects) or (word[:-1] if word[:-2] in objects else None)
        return near or word

    return re.sub(r"[a-z]+", fix, text)


# --- object uses of "box" and "mask" ---------------------------------------------------------------------

def mark_object_nouns(text: str, task_words: set[str], stop_words: set[str]) -> str:
    """Rewrite object uses of box(es)/mask(s) to alias tokens; task uses stay as written.

    A box/mask is an object when a content word modifies it ("cardboard boxes", "face masks", "stacked
    boxes"), when it follows "of" ("images of boxes"), or a mask follows "wearing". Anything else ("with
    boxes", "boxes and masks", "bounding boxes", "box annotations") is the annotation task.
    """
    words = list(re.finditer(r"[a-z0-9]+(?:['\-][a-z0-9]+)*|[^\sa-z0-9]", text))
    pieces, last = [], 0
    for i, m in enumerate(words):
        tok = m.group(0)
        base = {"box": "box", "boxes": "box", "mask": "mask", "masks": "mask"}.get(tok)
        if base is None:
            continue
        prev = words[i - 1].group(0) if i > 0 else ""
        nxt = words[i + 1].group(0) if i + 1 < len(words) else ""
        if nxt in TASK_FOLLOWERS - {"and", "+"}:
            continue
        content_modifier = (
            prev[:1].isalpha() and prev not in NOT_OBJECT_MODIFIERS and prev not in task_words
            and prev not in stop_words
        )  # fmt: skip
        after_of = prev == "of" and (i < 2 or words[i - 2].group(0) != "instead")
        if content_modifier or after_of or (base == "mask" and prev in WEARING - {"with"}):
            pieces += [text[last : m.start()], _ALIAS_OF[base] + ("s" if tok != base else "")]
            last = m.end()
    return "".join([*pieces, text[last:]])


def restore_alias(name: str) -> str:
    """'cardboard boxobj' → 'cardboard box'."""
    return " ".join(ALIASES.get(w, w) for w in name.split())


# --- splits and seed -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitsFound:
    """Fractions read from the request, and the text span they came from."""

    train: float
    val: float
    test: float
    span: tuple[int, int]


_RATIO = re.compile(
    r"\b(\d{1,2}(?:\.\d+)?)\s*%?\s*[/:\-]\s*(\d{1,2}(?:\.\d+)?)\s*%?(?:\s*[/:\-]\s*(\d{1,2}(?:\.\d+)?)\s*%?)?"
    r"(?:\s*(?:split|splits|train\s*/\s*val(?:idation)?(?:\s*/\s*test)?))?"
)
_PERCENT = re.compile(
    r"\b(\d{1,2}(?:\.\d+)?)\s*(?:%|percent)\s*(?:(?:for|as|of)\s+)?(?:the\s+)?"
    r"(train|training|val|valid|validation|dev|test|testing|eval|evaluation|holdout)\b"
    r"|\b(train|training|val|valid|validation|dev|test|testing|holdout)(?:\s+(?:split|set))?\s*(?:of|[:=])?\s*"
    r"(\d{1,2}(?:\.\d+)?)\s*(?:%|percent)"
)
_SPLIT_CONTEXT = re.compile(r"split|train|val|test|ratio")


def extract_splits(text: str) -> SplitsFound | None:
    """Split fractions stated in the request, or None. Unstated parts: val 0.2 (when room), the rest train.

    A ratio like "70/20/10" counts when it sums to 100 (or 1) and the request mentions a split, train, val or
    test anywhere, or it has three parts; "90/10" needs that context.
    """
    for m in _RATIO.finditer(text):
        parts = [float(g) for g in m.groups() if g is not None]
        total = sum(parts)
        if abs(total - 100) > 0.5 or not (len(parts) == 3 or _SPLIT_CONTEXT.search(text)):
            continue
        if text[m.end() : m.end() + 1].isalnum():
            continue
        fractions = [p / 100 for p in parts] + [0.0] * (3 - len(parts))
        return SplitsFound(*fractions, span=m.span())
    stated: dict[str, float] = {}
    span = None
    for m in _PERCENT.finditer(text):
        value = float(m.group(1) or m.group(4)) / 100
        name = SPLIT_NAMES[m.group(2) or m.group(3)]
        stated.setdefault(name, value)
        span = (span[0], m.end()) if span else m.span()
    if not stated or span is None:
        return None
    if sum(stated.values()) > 1.0 + 1e-6:
        return None
    if "train" in stated and len(stated) == 1:
        stated["val"] = round(1.0 - stated["train"], 6)
    if "train" not in stated:
        if "val" not in stated:
            stated["val"] = min(0.2, round(1.0 - sum(stated.values()), 6))
        stated["train"] = round(1.0 - stated.get("val", 0.0) - stated.get("test", 0.0), 6)
    stated.setdefault("val", 0.0)
    stated["test"] = round(1.0 - stated["train"] - stated["val"], 6) if "test" not in stated else stated["test"]
    if stated["train"] <= 0 or abs(stated["train"] + stated["val"] + stated["test"] - 1.0) > 1e-6:
        return None
    return SplitsFound(stated["train"], stated["val"], stated["test"], span=span)


_SEED = re.compile(r"\b(?:random\s+)?seed(?:\s+(?:of|is|=|to))?\s*[:=]?\s*(\d{1,10})\b")


def extract_seed(text: str) -> tuple[int, tuple[int, int]] | None:
    """(seed, span) when the request states one that fits in 32 bits, else None."""
    m = _SEED.search(text)
    if m is None or int(m.group(1)) >= 2**32:
        return None
    return int(m.group(1)), m.span()


def blank(text: str, span: tuple[int, int]) -> str:
    """`text` with `span` replaced by spaces and a comma (keeps other offsets, breaks phrases apart)."""
    a, b = span
    return text[:a] + " ," + " " * max(0, b - a - 2) + text[b:]
