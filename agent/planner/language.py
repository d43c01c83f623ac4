"""Which language a request is written in, by script and stop words (no model, no dependency).

The rules and the embedded model read English only. `detect_language` returns the language (or script) of a
request that is clearly not English, else None: mostly non-Latin letters → by script (CJK ideographs →
Chinese, kana → Japanese, Hangul → Korean, Cyrillic, Arabic, …); Latin letters → the language whose marker
words (`vocabulary/languages.json`, minus every word English or the planner's vocabulary also uses) occur at
least twice and at least as often as English words do, or once in a request with no English word at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from synthloop.agent.planner.lexicon import KNOWN_OBJECTS, VOCABULARY, table, words

NON_LATIN_SHARE = 0.3  # of the letters
_SCRIPTS = {  # first word of the Unicode character name → language (or script) named back to the user
    "CJK": "Chinese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean", "CYRILLIC": "Russian",
    "ARABIC": "Arabic", "HEBREW": "Hebrew", "GREEK": "Greek", "DEVANAGARI": "Hindi", "THAI": "Thai",
    "BENGALI": "Bengali", "TAMIL": "Tamil", "ARMENIAN": "Armenian", "GEORGIAN": "Georgian", "ETHIOPIC": "Amharic",
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

_LISTS = table("languages")
ENGLISH_WORDS = (
    frozenset(_LISTS["english"]) | VOCABULARY | words("function_words")
    | frozenset(w for name in KNOWN_OBJECTS for w in name.split())
)
# Grammar words per language (also used when grounding a translated request); markers: those English lacks.
GRAMMAR: dict[str, frozenset[str]] = {
    lang: frozenset(w.lower() for w in entries) for lang, entries in _LISTS.items() if lang != "english"
}
MARKERS: dict[str, frozenset[str]] = {lang: entries - ENGLISH_WORDS for lang, entries in GRAMMAR.items()}


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else ""


def script_language(text: str) -> str | None:
    """The language of a request written mostly in a non-Latin script, else None."""
    letters = [c for c in text if c.isalpha()]
    scripts = Counter(_script(c) for c in letters if _script(c) in _SCRIPTS)
    if sum(scripts.values()) < 2 or sum(scripts.values()) < NON_LATIN_SHARE * len(letters):
        return None
    if scripts["HIRAGANA"] or scripts["KATAKANA"]:
        return "Japanese"  # Japanese mixes kana with CJK ideographs
    return _SCRIPTS[scripts.most_common(1)[0][0]]


def detect_language(text: str) -> str | None:
    """The language a request is written in when it is clearly not English ("German", "Chinese", …); None for
    English, for mixed text that is mostly English, and for text with no words."""
    by_script = script_language(text)
    if by_script is not None:
        return by_script
    tokens = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    english = sum(t in ENGLISH_WORDS for t in tokens)
    hits = {lang: sum(t in markers for t in tokens) for lang, markers in MARKERS.items()}
    lang, best = max(hits.items(), key=lambda item: item[1])
    if (best >= 2 and best >= english) or (best >= 1 and english == 0):
        return lang.capitalize()
    return None


def foreign_words(text: str) -> list[str]:
    """The words of a request in reading order (letters of any script; runs of ideographs stay whole)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())
