"""Numbers in request tokens: digits ('1,000', '1.5k'), number words ('two hundred and fifty', 'a dozen') and
per-image count expressions ('2-5', 'between 2 and 5', 'up to 4', 'at least 2')."""

from __future__ import annotations

import re
from dataclasses import dataclass

from synthloop.agent.planner.lexicon import NUMBER_WORDS, SCALES, TENS, UNITS

_DIGITS = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(k)?")


@dataclass
class Number:
    """A number found in the tokens, and what it counts once read in context."""

    value: float
    start: int  # token index
    end: int  # token index after the number
    role: str = ""  # "", "images", "count"
    correction: bool = False  # "make it 300": replaces earlier image counts


def digit_value(token: str) -> float | None:
    """The value of a digit token ('1,000', '1.5k', '300'), or None when it is not one."""
    m = _DIGITS.fullmatch(token)
    if m is None:
        return None
    digits = m.group(1).replace(",", "")
    if len(digits) > 15:  # absurd; still a number, so it ends up as an out-of-range question
        return 1e15
    value = float(digits + ("." + m.group(2) if m.group(2) else ""))
    return value * 1000 if m.group(3) else value


def parse_number(tokens: list[str], i: int) -> tuple[float, int] | None:
    """A number starting at token i: digits (with 'k', 'thousand', 'dozen'...) or number words."""
    if i >= len(tokens):
        return None
    value = digit_value(tokens[i])
    if value is not None:
        j = i + 1
        if j < len(tokens) and tokens[j] in (*SCALES, "dozen"):
            value *= SCALES.get(tokens[j], 12)
            j += 1
        return value, j
    total, current, seen, j = 0, 0, False, i
    while j < len(tokens):
        word = tokens[j]
        parts = word.split("-")
        nxt = tokens[j + 1] if j + 1 < len(tokens) else ""
        if word == "half" and not seen and tokens[j + 1 : j + 3] == ["a", "dozen"]:
            return 6.0, j + 3
        if word in ("a", "an") and not seen and nxt in (*SCALES, "dozen"):
            current, j = 1, j + 1
            continue
        if word == "and" and seen and nxt.split("-")[0] in (*UNITS, *TENS):
            j += 1
            continue
        if not all(p in NUMBER_WORDS for p in parts):
            break
        for p in parts:
            if p in UNITS or p in TENS:
                current += UNITS.get(p, 0) + TENS.get(p, 0)
            elif p == "hundred":
                current = max(current, 1) * 100
            elif p == "dozen":
                current = max(current, 1) * 12
            else:
                total, current = total + max(current, 1) * SCALES[p], 0
        seen, j = True, j + 1
    return (float(total + current), j) if seen else None


def is_int(value: float) -> bool:
    """A non-negative whole number."""
    return value == int(value) and value >= 0


def parse_count(tokens: list[str], i: int) -> tuple[int, int, int] | None:
    """A per-image count expression at token i → (min, max, next index): '3', '2-5', 'between 2 and 5',
    'up to 4', 'at least 2'."""
    tok = tokens[i] if i < len(tokens) else ""
    two = " ".join(tokens[i : i + 2])
    three = " ".join(tokens[i : i + 3])
    if tok == "between" or (tok == "from" and parse_number(tokens, i + 1)):
        a = parse_number(tokens, i + 1)
        if a and a[1] < len(tokens) and tokens[a[1]] in ("and", "to", "-"):
            b = parse_number(tokens, a[1] + 1)
            if b and is_int(a[0]) and is_int(b[0]):
                lo, hi = sorted((int(a[0]), int(b[0])))
                return lo, hi, b[1]
        return None
    for phrase, kind in (("no more than", "max"), ("up to", "max"), ("at most", "max"), ("at least", "min")):
        n_words = len(phrase.split())
        if (two if n_words == 2 else three) == phrase:
            n = parse_number(tokens, i + n_words)
            if n and is_int(n[0]):
                v = int(n[0])
                return (min(1, v), v, n[1]) if kind == "max" else (v, v + 2, n[1])
            return None
    n = parse_number(tokens, i)
    if n is None or not is_int(n[0]):
        return None
    j = n[1]
    if j + 1 < len(tokens) and tokens[j] in ("-", "to", "–"):
        m = parse_number(tokens, j + 1)
        if m and is_int(m[0]):
            lo, hi = sorted((int(n[0]), int(m[0])))
            return lo, hi, m[1]
    return int(n[0]), int(n[0]), j
