"""Text helpers every reader shares: safe request text, normalisation, tokens, singulars, negation-aware search."""

from __future__ import annotations

import re
import unicodedata

from synthloop.agent.planner.lexicon import IRREGULAR_PLURALS

MAX_REQUEST_CHARS = 4000
TOKEN = re.compile(r"\d+(?:[,.]\d+)*[a-z]*|[a-z][a-z0-9]*(?:['\-][a-z0-9]+)*|\n|[^\sa-z0-9]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NEGATION = re.compile(r"\b(?:no|without|not|don'?t|do not|never|skip|excluding|except)\b(?:\s+\w+){0,2}\s*$")


def clean_request(request: object) -> str:
    """The request as safe text: str only, control characters dropped, at most `MAX_REQUEST_CHARS`."""
    if isinstance(request, bytes):
        request = request.decode("utf-8", errors="replace")
    if not isinstance(request, str):
        return ""
    text = _CONTROL.sub(" ", request.replace("\ufffd", " ")).strip()
    return text[:MAX_REQUEST_CHARS]


def normalise(text: str) -> str:
    """Lower-case ASCII for matching: NFKD without accents, '×' read as 'x', whitespace squeezed per line."""
    text = unicodedata.normalize("NFKC", text).replace("×", "x")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.lower().replace("’", "'")
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


def tokens_of(text: str) -> list[str]:
    """Word, number and punctuation tokens of normalised text."""
    return TOKEN.findall(text)


def singular(word: str) -> str:
    """English singular of one lower-case word (rules plus a table of irregular forms)."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ves"):
        return word[:-3] + "f"
    if word.endswith(("ches", "shes", "xes", "zes", "sses", "oes")):
        return word[:-2]
    return word[:-1]


def is_negated(text: str, start: int) -> bool:
    """Whether a negation ('no', 'without', "don't" …) stands at most two words before offset `start`."""
    return bool(_NEGATION.search(text[max(0, start - 30) : start]))


def find(pattern: str, text: str) -> list[re.Match[str]]:
    """Non-negated whole-word matches of a pattern."""
    return [m for m in re.finditer(rf"(?<![\w-])(?:{pattern})(?!\w)", text) if not is_negated(text, m.start())]


def is_punct(token: str) -> bool:
    """Whether a token is punctuation (or a line break) rather than a word or number."""
    return not token[0].isalnum()
