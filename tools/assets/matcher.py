"""Matching class names to assets through WordNet: which sense a class means, which sense an asset shows, and
whether the asset is a kind of the class.

1. Class sense: among the concrete noun senses of the class name (animal, artifact, food, plant, person, natural
   object), the one that best fits its context: words of the scene, style, attributes and prompt found in the
   sense's gloss or lemmas (its hypernyms' lemmas included), then relatedness to the other classes (depth of
   the deepest shared hypernym: 'mouse' beside 'keyboard' is the device), then WordNet's frequency order.
2. Asset sense: the same for the asset's head noun, with its folder names and description as context
   ('animals/mammals/rodents/mouse.png' is the rodent).
3. Match: the asset's sense is the class's sense or one of its kinds (a sedan is a car, a hen a bird), at most
   `max_hypernym_steps` below it; a class sense shallower than `min_class_depth` (too general: 'object',
   'thing') matches nothing. `CLASS_SCOPE` widens a few classes the way common datasets define them (COCO's
   'cup' includes mugs).
Without WordNet installed, an asset matches a class only by identical name (singular, case and separators
ignored). Nothing is mapped by loose similarity, so a fork never becomes a forklift.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from synthloop.tools.assets.describe import head_term, is_symbolic, words
from synthloop.tools.assets.wordnet import Synset, WordNet

# Classes whose usual dataset definition (COCO's) is wider than one WordNet synset: extra lemmas they cover.
CLASS_SCOPE: dict[str, tuple[str, ...]] = {
    "cup": ("mug", "teacup", "coffee_mug"),
    "couch": ("sofa",),
    "tv": ("television_receiver", "television", "monitor"),
    "motorcycle": ("motorbike", "motor_scooter", "minibike"),
    "boat": ("ship", "sailboat", "sailing_vessel"),
    "train": ("locomotive",),
    "airplane": ("jet", "airliner", "aeroplane"),
    "car": ("taxi", "police_car"),
    "dining table": ("table",),
    "potted plant": ("houseplant", "pot_plant"),
    "sports ball": ("ball", "football", "soccer_ball", "basketball", "baseball", "tennis_ball", "volleyball",
                    "golf_ball"),
}
_STOP = frozenset({"the", "and", "for", "with", "used", "that", "which", "any", "one", "from", "into", "its",
                   "usually", "especially", "often", "other", "some", "such", "this", "has", "have", "are"})


@dataclass(frozen=True)
class MatchParams:
    """Thresholds of the matcher (calibrated on tools/assets/match_pairs.jsonl, see calibrate.py)."""

    max_hypernym_steps: int = 6
    min_class_depth: int = 3
    relatedness_margin: int = 4  # how much closer to the other classes a rarer sense must be to win
    min_related_depth: int = 6  # a shared hypernym this general ('instrumentality') says nothing


@dataclass(frozen=True)
class ClassSense:
    """What a class name was taken to mean.

    synsets: the accepted WordNet synsets (the chosen sense plus CLASS_SCOPE extensions); empty without a sense.
    gloss: the chosen sense's gloss; alternatives: the other concrete senses' names/glosses (for messages).
    """

    name: str
    synsets: tuple[int, ...]
    gloss: str = ""
    alternatives: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        """Whether the name has other concrete senses the context ruled out (worth telling the user)."""
        return bool(self.alternatives)


def normalise_name(name: str) -> str:
    """'Traffic_Lights' → 'traffic light' (lower case, spaces, a trailing plural s dropped) for name matching."""
    text = " ".join(words(name))
    if text.endswith("ies") and len(text) > 4:
        return text[:-3] + "y"
    if text.endswith("s") and not text.endswith("ss") and len(text) > 3:
        return text[:-1]
    return text


class Matcher:
    """Class ↔ asset matching on one WordNet (or by name only when `wordnet` is None)."""

    def __init__(self, wordnet: WordNet | None, params: MatchParams | None = None) -> None:
        self.wordnet = wordnet
        self.params = params or MatchParams()

    def class_sense(self, name: str, context: Iterable[str] = (), other_classes: Iterable[str] = ()) -> ClassSense:
        """The sense of class `name` given context words (scene, style, attributes) and the other classes."""
        wn = self.wordnet
        if wn is None:
            return ClassSense(name, ())
        senses = _concrete(wn.senses(name)) or wn.senses(name)  # 'traffic light' is a signal, not an artifact
        if not senses and name in CLASS_SCOPE:  # 'potted plant': its scope, not every plant
            scope = tuple(s[0].offset for s in (_concrete(wn.senses(x)) for x in CLASS_SCOPE[name]) if s)
            return ClassSense(name, scope, f"as {', '.join(CLASS_SCOPE[name])}".replace("_", " "))
        if not senses:  # 'kitchen knife': its head noun
            head = name.split()[-1]
            senses = (_concrete(wn.senses(head)) or wn.senses(head)) if head != name else []
        if not senses:
            return ClassSense(name, ())
        context_lemmas = self._lemmas(context)
        # Each other class by its leading sense (an object, animal or food before a figurative one).
        others = [_leading(found) for other in other_classes if other != name
                  if (found := _concrete(wn.senses(other)))]
        related = [max((self.relatedness(s.offset, o.offset) for o in others), default=0) for s in senses]
        related = [r if r >= self.params.min_related_depth else 0 for r in related]
        closer = [r - related[0] >= self.params.relatedness_margin for r in related]
        best = max(range(len(senses)), key=lambda i: (self._overlap(senses[i], context_lemmas),
                                                       _tier(senses, i), closer[i], related[i] if closer[i] else 0,
                                                       -i))
        chosen = senses[best]
        scope = [next(s.offset for s in extensions if s.lexname == chosen.lexname)
                 for extensions in (_concrete(wn.senses(extra)) for extra in CLASS_SCOPE.get(name, ()))
                 if any(s.lexname == chosen.lexname for s in extensions)]
        alternatives = tuple(f"{s.name} ({s.gloss.split(';')[0]})" for i, s in enumerate(senses)
                             if i != best and not wn.is_a(s.offset, chosen.offset)
                             and not wn.is_a(chosen.offset, s.offset) and s.lexname != chosen.lexname)
        return ClassSense(name, (chosen.offset, *scope), chosen.gloss.split(";")[0], alternatives)

    def asset_sense(self, head: str, context: Iterable[str] = ()) -> int | None:
        """The synset an asset with head noun `head` shows, given its folder / description words."""
        return self._asset_sense(head, tuple(context))

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def _asset_sense(self, head: str, context: tuple[str, ...]) -> int | None:
        wn = self.wordnet
        if wn is None or not head:
            return None
        senses = _concrete(wn.senses(head)) or wn.senses(head)
        if not senses:
            return None
        context_lemmas = self._lemmas(context) - {wn.lemma(head)}
        best = max(range(len(senses)), key=lambda i: (self._overlap(senses[i], context_lemmas),
                                                       _tier(senses, i), -i))
        return senses[best].offset

    def asset_matches(self, sense: ClassSense, description: str, folder_words: list[str], *,
                      head: str | None = None) -> bool:
        """Whether an asset described by `description` in folders `folder_words` shows an object of the class
        (signs, icons and shapes only for classes that are signs or signals themselves). `head`: its head noun
        when already known (head_term of the description)."""
        if is_symbolic(folder_words) and not self.is_signal(sense):
            return False
        head = head_term(description, self.wordnet) if head is None else head
        if not self.could_match(sense, head):
            return False
        return self.matches(sense, head, self.asset_sense(head, [*folder_words, description]))

    def could_match(self, sense: ClassSense, head: str) -> bool:
        """A quick test before sense choice: the head noun names the class or one of its kinds."""
        if not sense.synsets or self.wordnet is None:
            return normalise_name(head) == normalise_name(sense.name)
        return self.wordnet.lemma(head) in self._kind_lemmas(sense.synsets)

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def _kind_lemmas(self, synsets: tuple[int, ...]) -> frozenset[str]:
        """Lemmas of the synsets and their hyponyms down to max_hypernym_steps."""
        assert self.wordnet is not None
        found: set[str] = set()
        frontier = list(synsets)
        for _ in range(self.params.max_hypernym_steps + 1):
            next_frontier = []
            for offset in frontier:
                synset = self.wordnet.synset(offset)
                found.update(synset.lemmas)
                next_frontier.extend(synset.hyponyms)
            frontier = next_frontier
        return frozenset(found)

    def matches(self, sense: ClassSense, head: str, asset_sense: int | None) -> bool:
        """Whether an asset (head noun and sense) shows an object of the class."""
        if normalise_name(head) == normalise_name(sense.name) and not sense.synsets:
            return True
        wn = self.wordnet
        if wn is None or asset_sense is None or not sense.synsets:
            return False
        for i, target in enumerate(sense.synsets):
            if i == 0 and self.depth(target) < self.params.min_class_depth:
                continue
            steps = self.steps_up(asset_sense, target)
            if steps is not None and steps <= self.params.max_hypernym_steps:
                return True
        return False

    def is_signal(self, sense: ClassSense) -> bool:
        """Whether a class is a sign or signal ('stop sign', 'traffic light'), found among road signs."""
        wn = self.wordnet
        if wn is None or not sense.synsets:
            return "sign" in sense.name.split()
        return wn.synset(sense.synsets[0]).lexname == "communication"

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - a matcher lives as long as its library
    def depth(self, offset: int) -> int:
        """Shortest hypernym path length from a synset to the root ('entity' is 0)."""
        assert self.wordnet is not None
        parents = self.wordnet.synset(offset).hypernyms
        return 0 if not parents else 1 + min(self.depth(p) for p in parents)

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def steps_up(self, offset: int, ancestor: int) -> int | None:
        """Hypernym steps from `offset` up to `ancestor` (0 when equal), None when it is no ancestor."""
        assert self.wordnet is not None
        if offset == ancestor:
            return 0
        if ancestor not in self.wordnet.ancestors(offset):
            return None
        steps = [self.steps_up(p, ancestor) for p in self.wordnet.synset(offset).hypernyms]
        found = [s for s in steps if s is not None]
        return 1 + min(found) if found else None

    def relatedness(self, a: int, b: int) -> int:
        """Depth of the deepest hypernym two synsets share ('plate' the dish and 'fork' share 'tableware');
        0 when one is a kind of the other: a class listed beside another is not a kind of it ('bus' beside
        'car' is not the jalopy)."""
        wn = self.wordnet
        assert wn is not None
        if wn.is_a(a, b) or wn.is_a(b, a):
            return 0
        common = wn.ancestors(a) & wn.ancestors(b)
        return max((self.depth(c) for c in common), default=0)

    def _lemmas(self, context: Iterable[str]) -> frozenset[str]:
        assert self.wordnet is not None
        found = set()
        for text in context:
            for word in words(text):
                if len(word) >= 3 and word not in _STOP:
                    found.add(self.wordnet.lemma(word) or word)
        return frozenset(found)

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def _signature(self, offset: int) -> frozenset[str]:
        """Words that evoke a sense: its lemmas and gloss, its hypernyms' and direct hyponyms' lemmas."""
        wn = self.wordnet
        assert wn is not None
        synset = wn.synset(offset)
        found = {part for lemma in synset.lemmas for part in lemma.split("_")}
        found |= {wn.lemma(w) or w for w in words(synset.gloss.split('"')[0]) if len(w) >= 3 and w not in _STOP}
        for related in (*wn.ancestors(offset), *synset.hyponyms):
            found |= {part for lemma in wn.synset(related).lemmas for part in lemma.split("_")}
        return frozenset(found)

    def _overlap(self, synset: Synset, context: frozenset[str]) -> int:
        """How many context words the sense evokes."""
        return len(self._signature(synset.offset) & context)


def _tier(senses: list[Synset], i: int) -> int:
    """How likely a dataset class means this sense, context aside: an object, animal or food first; a plant
    or natural object next ('broccoli' the vegetable before the plant); a person sense ('hotdog' the show-off,
    'mug' the chump) or body part only when the word has nothing else."""
    lexname = senses[i].lexname
    if lexname in ("artifact", "animal", "food"):
        return 3
    if lexname in ("plant", "object"):
        return 2
    if lexname == "person":
        return 1 if all(s.lexname in ("person", "body") for s in senses) else 0
    return 0 if lexname == "body" else 1


def _leading(senses: list[Synset]) -> Synset:
    """The sense a class name most likely means without context (see _tier)."""
    return senses[max(range(len(senses)), key=lambda i: (_tier(senses, i), -i))]


def _concrete(senses: list[Synset]) -> list[Synset]:
    """The senses one can see and cut out, in frequency order."""
    return [s for s in senses if s.concrete]
