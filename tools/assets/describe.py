"""What an asset depicts, read from its description: the head noun ('A cup of coffee.' → 'cup'; 'A garbage
truck.' → 'garbage truck'; 'apple_bitten_dan_gerhard_01.png' → 'apple') and context words from its folders.

English noun compounds are head-final: of a run of nouns, the longest tail that WordNet lists is the head
('police sedan' → 'sedan', 'mouse pointer' → 'pointer', 'coffee cup' → 'coffee cup'). Descriptions of several
objects ('bread and wine') have no single head: such assets are not used as one class's cut-out.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from synthloop.tools.assets.wordnet import WordNet

ARTICLES = frozenset({"a", "an", "the", "some", "one", "two", "three", "four", "five", "several", "many", "few",
                      "this", "that", "these", "those", "my", "our", "their", "his", "her", "its", "very", "your",
                      "another"})
# 'A pair of glasses', 'a slice of pizza': the object is after "of".
QUANTIFIERS = frozenset({"pair", "piece", "slice", "bunch", "group", "couple", "set", "stack", "pile", "handful",
                         "loaf", "head", "ear", "stalk", "cluster", "sprig", "clove", "wedge", "half", "herd",
                         "flock", "school", "bouquet", "bundle", "kind", "type", "sort", "picture", "drawing",
                         "photo", "photograph", "image", "illustration", "icon", "silhouette", "cartoon",
                         "clipart", "clip", "sketch", "outline", "lot", "collection", "row", "quarter", "portion",
                         "serving", "string"})
# In file names the portion word comes last ('pizza_slice'): the object is the noun before it.
PORTIONS = frozenset({"slice", "piece", "quarter", "wedge", "half", "portion", "chunk", "bunch"})
SEPARATORS = ("of", "with", "in", "on", "for", "at", "from", "by", "under", "over", "near", "inside", "holding",
              "wearing", "filled", "full")
CONJUNCTIONS = ("and", "or", "&", "plus")
# Filename tokens that say nothing about the object.
NOISE = frozenset({"bw", "black", "white", "colour", "color", "colored", "coloured", "outline", "lineart", "line",
                   "art", "clipart", "clip", "icon", "png", "svg", "simple", "cartoon", "new", "old", "small",
                   "big", "large", "mirror", "flip", "thumb", "front", "back", "side", "left", "right", "top",
                   "sample", "template", "openclipart", "ganson", "version", "ver", "v", "one", "two", "three",
                   "four", "five"})
# Folders whose images stand for a thing rather than show it (road signs, icons, logos, flags, shapes).
SYMBOL_FOLDERS = frozenset({"roadsign", "roadsigns", "sign", "signs", "symbol", "symbols", "icon", "icons", "logo",
                            "logos", "button", "buttons", "flag", "flags", "shape", "shapes", "alphabet",
                            "alphabets", "money", "card", "cards", "math", "geography", "map", "maps", "emblem"})
_WORD = re.compile(r"[a-z]+")
MAX_RUN = 3


def words(text: str) -> list[str]:
    """Lower-case alphabetic words of `text` ('teacup_bw-02.png' → ['teacup', 'bw', 'png'])."""
    return _WORD.findall(text.lower().replace("_", " "))


def head_term(text: str, wordnet: WordNet | None) -> str:
    """The head noun phrase of a description (WordNet lemma form, spaces for underscores); '' when none or
    when it names several objects."""
    first_sentence = re.split(r"[.!?]\s|[.!?]$|\(", text.strip() + " ", maxsplit=1)[0]
    tokens = [t for t in words(first_sentence) if t not in NOISE or t in ("black", "white")][:12]
    while tokens and tokens[0] in ARTICLES:
        tokens = tokens[1:]
    chunk = _first_chunk(tokens)
    while len(chunk) >= 1 and chunk[-1] in QUANTIFIERS and len(tokens) > len(chunk) + 1:
        tokens = tokens[len(chunk) + 1:]
        while tokens and tokens[0] in ARTICLES:
            tokens = tokens[1:]
        chunk = _first_chunk(tokens)
    rest = tokens[len(chunk):]
    if rest and rest[0] in CONJUNCTIONS and wordnet is not None and any(wordnet.is_noun(t) for t in rest[1:3]):
        return ""  # 'bread and wine': two objects
    if wordnet is None:
        return chunk[-1] if chunk else ""
    run = _noun_run(chunk, wordnet)
    while len(run) > 1 and run[-1] in PORTIONS:
        run = run[:-1]
    before = chunk.index(run[0]) - 1 if run else -1
    if before >= 0 and wordnet.lemma(f"{chunk[before]}_{run[-1]}"):  # 'hot dog', 'rocking chair'
        run = [chunk[before], run[-1]]
    for start in range(len(run)):
        lemma = wordnet.lemma("_".join(run[start:]))
        if lemma:
            return _more_specific(run[:start], lemma, wordnet).replace("_", " ")
    return ""


def _more_specific(modifiers: list[str], head: str, wordnet: WordNet) -> str:
    """'laptop computer': a modifier that is itself a kind of the head is the better head ('laptop')."""
    heads = {s.offset for s in wordnet.senses(head)}
    for modifier in modifiers:
        for sense in wordnet.senses(modifier):
            if heads & (wordnet.ancestors(sense.offset) - {sense.offset}):
                return wordnet.lemma(modifier)
    return head


def _first_chunk(tokens: list[str]) -> list[str]:
    """Tokens before the first separator or conjunction."""
    for i, token in enumerate(tokens):
        if token in SEPARATORS or token in CONJUNCTIONS:
            return tokens[:i]
    return tokens


def _noun_run(chunk: list[str], wordnet: WordNet) -> list[str]:
    """The first run of consecutive nouns (at most MAX_RUN) in `chunk`; a noun run may start with modifiers
    that are nouns too ('police sedan'), the head is found from its end."""
    run: list[str] = []
    for token in chunk:
        if wordnet.is_noun(token):
            run.append(token)
            if len(run) == MAX_RUN:
                break
        elif run:
            break
    return run


def path_context(path: str | PurePath, root: str | PurePath) -> list[str]:
    """Context words from an asset's folders below its library root ('animals/mammals/rodents' → words)."""
    try:
        relative = PurePath(path).relative_to(root)
    except ValueError:
        relative = PurePath(PurePath(path).name)
    return [w for part in relative.parts[:-1] for w in words(part) if w not in NOISE]


def is_symbolic(folder_words: list[str]) -> bool:
    """Whether an asset's folders say it is a sign, icon, logo or shape rather than the object itself."""
    return any(word in SYMBOL_FOLDERS for word in folder_words)


def filename_description(path: str | PurePath) -> str:
    """A readable description from a clip-art file name ('apple_bitten_dan_gerhard_01.png' → 'apple bitten dan
    gerhard')."""
    return " ".join(words(PurePath(path).stem))
