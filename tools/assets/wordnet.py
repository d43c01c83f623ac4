"""A minimal reader of the WordNet 3.0 noun database files (Debian's `wordnet-base`), no third-party code.

Only what class-to-asset matching needs: noun senses of a word (most frequent first), a synset's lemmas,
gloss, lexicographer file and hypernyms / hyponyms. `index.noun` is loaded into a dict once; synsets are read
from `data.noun` by byte offset through a memory map (thread-safe, nothing else loaded).

The folder is `$SYNTHLOOP_WORDNET_DIR`, else `/usr/share/wordnet`; `load_wordnet()` returns None when the
files are not installed (callers then match by name only).
"""

from __future__ import annotations

import functools
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIRS = ("/usr/share/wordnet", "/usr/share/WordNet", "/usr/local/share/wordnet")

# Lexicographer files of nouns one can photograph (fixed numbering in WordNet 3.0).
LEXNAMES = {3: "Tops", 4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body", 9: "cognition",
            10: "communication", 11: "event", 12: "feeling", 13: "food", 14: "group", 15: "location", 16: "motive",
            17: "object", 18: "person", 19: "phenomenon", 20: "plant", 21: "possession", 22: "process",
            23: "quantity", 24: "relation", 25: "shape", 26: "state", 27: "substance", 28: "time"}
CONCRETE_LEXNAMES = frozenset({"animal", "artifact", "body", "food", "object", "person", "plant", "Tops"})

_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
             ("ies", "y"), ("s", ""))


@dataclass(frozen=True)
class Synset:
    """One noun synset: its byte offset (the id), lemmas, gloss, lexicographer file and relations."""

    offset: int
    lemmas: tuple[str, ...]
    lexname: str
    gloss: str
    hypernyms: tuple[int, ...]
    hyponyms: tuple[int, ...]
    proper: bool = False  # a named individual ('Crane', the writer; 'Orange', the river)

    @property
    def concrete(self) -> bool:
        """A kind of thing one can see and cut out (animal, artifact, food, plant, person, natural object)."""
        return self.lexname in CONCRETE_LEXNAMES and not self.proper

    @property
    def name(self) -> str:
        """Its first lemma, spaces for underscores ('coffee cup')."""
        return self.lemmas[0].replace("_", " ")


class WordNet:
    """Noun lookups on one WordNet database folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._index: dict[str, tuple[int, ...]] = {}
        with open(self.root / "index.noun", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(" "):
                    continue
                fields = line.split()
                synset_count, pointer_count = int(fields[2]), int(fields[3])
                self._index[fields[0]] = tuple(int(x) for x in fields[6 + pointer_count:6 + pointer_count
                                                                      + synset_count])
        self._exceptions: dict[str, str] = {}
        exceptions = self.root / "noun.exc"
        if exceptions.is_file():
            for line in exceptions.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    self._exceptions.setdefault(parts[0], parts[1])
        with open(self.root / "data.noun", "rb") as handle:
            self._data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

    def is_noun(self, word: str) -> bool:
        """Whether `word` (or its singular) is a WordNet noun lemma."""
        return bool(self.lemma(word))

    def lemma(self, word: str) -> str:
        """The index lemma of `word`: itself when listed ('glasses'), else its singular ('cups' → 'cup'), else ''."""
        key = word.strip().lower().replace(" ", "_").replace("-", "_")
        if key in self._index:
            return key
        if key.replace("_", "") in self._index:  # 'hot_dog' is listed as 'hotdog', 'tea cup' as 'teacup'
            return key.replace("_", "")
        head, _, last = key.rpartition("_")
        prefix = f"{head}_" if head else ""
        if last in self._exceptions and prefix + self._exceptions[last] in self._index:
            return prefix + self._exceptions[last]
        for suffix, replacement in _SUFFIXES:
            if last.endswith(suffix) and len(last) > len(suffix) + 1:
                candidate = prefix + last[: len(last) - len(suffix)] + replacement
                if candidate in self._index:
                    return candidate
        return ""

    def senses(self, word: str) -> list[Synset]:
        """Noun senses of `word`, most frequent first (empty when it is no noun)."""
        lemma = self.lemma(word)
        return [self.synset(offset) for offset in self._index.get(lemma, ())]

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one WordNet per process; synsets are small and immutable
    def synset(self, offset: int) -> Synset:
        """The synset at byte `offset` of data.noun."""
        end = self._data.find(b"\n", offset)
        line = self._data[offset:end if end >= 0 else len(self._data)].decode("utf-8")
        data, _, gloss = line.partition(" | ")
        fields = data.split()
        lexname = LEXNAMES.get(int(fields[1]), "other")
        word_count = int(fields[3], 16)
        raw_lemmas = [fields[4 + 2 * i] for i in range(word_count)]
        lemmas = tuple(lemma.lower() for lemma in raw_lemmas)
        at = 4 + 2 * word_count
        pointer_count = int(fields[at])
        hypernyms, hyponyms = [], []
        instance = False
        for i in range(pointer_count):
            symbol, target, pos = fields[at + 1 + 4 * i], int(fields[at + 2 + 4 * i]), fields[at + 3 + 4 * i]
            if pos != "n":
                continue
            if symbol in ("@", "@i"):
                hypernyms.append(target)
                instance = instance or symbol == "@i"
            elif symbol in ("~", "~i"):
                hyponyms.append(target)
        proper = instance or raw_lemmas[0][:1].isupper()
        return Synset(offset, lemmas, lexname, gloss.strip(), tuple(hypernyms), tuple(hyponyms), proper)

    @functools.lru_cache(maxsize=16384)  # noqa: B019
    def ancestors(self, offset: int) -> frozenset[int]:
        """Every hypernym of a synset, transitively (itself excluded)."""
        found: set[int] = set()
        for parent in self.synset(offset).hypernyms:
            found.add(parent)
            found |= self.ancestors(parent)
        return frozenset(found)

    def is_a(self, offset: int, ancestor: int) -> bool:
        """Whether synset `offset` is `ancestor` or one of its kinds (hyponyms, transitively)."""
        return offset == ancestor or ancestor in self.ancestors(offset)


@functools.cache
def load_wordnet(root: str | None = None) -> WordNet | None:
    """The installed WordNet (`root`, `$SYNTHLOOP_WORDNET_DIR` or a standard folder), or None if absent."""
    candidates = [root] if root else [os.environ.get("SYNTHLOOP_WORDNET_DIR", ""), *DEFAULT_DIRS]
    for candidate in candidates:
        if candidate and (Path(candidate) / "index.noun").is_file() and (Path(candidate) / "data.noun").is_file():
            return WordNet(candidate)
    return None
