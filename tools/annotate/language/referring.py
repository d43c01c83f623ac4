"""Referring expressions (RefCOCO style): sentences that single out one visible object each.

Per object the generator writes candidate sentences of five kinds, each only when it is clearly true of
that object (margins against borderline positions, orderings and sizes):
- name: "the plate", "the red cup" (class, with the object's attributes when it has any);
- location: "the cup on the left" (the object's centre well inside a third of the image, and no other
  object of its class near that third's border);
- size: "the largest cup" (its box at least GENERATOR_SIZE_RATIO times every other of its class);
- ordinal: "the leftmost cup", "the second cup from the right" (neighbours far enough apart to order);
- relation: "the cup left of the plate" (a rule relation of the object, the other object named by its own
  shortest unique description).
A candidate is kept only if the independent `Resolver` reads it back to exactly this object; then up to
`max_sentences` are chosen per object, distinct kinds first, in a seeded order. An object with no unique
sentence gets no `ReferringExpression` at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from synthloop.tools.annotate.language.describe import Scene, SceneObject
from synthloop.tools.annotate.language.resolver import Referent, Resolver
from synthloop.tools.annotate.language.vocabulary import (
    EXTREME_WORDS,
    LARGEST_WORDS,
    LOCATION_PHRASES,
    ORDINAL_DIRECTIONS,
    ORDINAL_MIN_GAP,
    ORDINAL_WORDS,
    PREDICATE_PHRASES,
    REGION_SPLITS,
    SMALLEST_WORDS,
    sentence_attribute,
)
from synthloop.tools.types import ReferringExpression, Relation

GENERATOR_SIZE_RATIO = 1.5  # stricter than the resolver's SIZE_RATIO: a size word only when obvious
REGION_MARGIN = 0.04  # fraction of the image side a centre must keep from a region border
MAX_ORDINAL_RANK = 3
MAX_RELATIONS_PER_OBJECT = 8  # relation sentences tried per object (its strongest, nearest relations)
KINDS = ("name", "location", "size", "ordinal", "relation")


def referent_of(obj: SceneObject) -> Referent:
    """What the resolver knows of a scene object."""
    return Referent(category=obj.category, attributes=obj.attributes, box=obj.region.box, depth=obj.region.depth)


def referring_expressions(
    scene: Scene, relations: Sequence[Relation], *, seed: int, max_sentences: int = 3
) -> list[ReferringExpression]:
    """Unique sentences for every visible object that has one (instance indices; `relations` between
    instance indices, strongest first, supply the relation sentences)."""
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
    objects = list(scene.objects)
    resolver = Resolver([referent_of(o) for o in objects], scene.width, scene.height)
    position = {o.index: k for k, o in enumerate(objects)}
    writer = _Writer(scene, objects)
    by_subject: dict[int, list[Relation]] = defaultdict(list)
    for r in relations:
        if r.subject in position and r.object in position and r.predicate in PREDICATE_PHRASES:
            by_subject[r.subject].append(r)

    shortest: dict[int, str | None] = {}

    def anchor_text(index: int) -> str | None:
        if index not in shortest:
            options = [s for kind in ("name", "location") for s in writer.sentences(objects[position[index]], kind)]
            shortest[index] = next((s for s in options if resolver.resolve(s) == position[index]), None)
        return shortest[index]

    expressions = []
    for k, obj in enumerate(objects):
        kept: dict[str, list[str]] = {}
        for kind in KINDS:
            if kind == "relation":
                texts = writer.relation_sentences(obj, by_subject[obj.index][:MAX_RELATIONS_PER_OBJECT],
                                                  anchor_text)
            else:
                texts = writer.sentences(obj, kind)
            unique = [t for t in dict.fromkeys(texts) if resolver.resolve(t) == k]
            if unique:
                kept[kind] = unique
        if kept:
            rng = np.random.default_rng([seed, obj.index, 0x5EF])
            expressions.append(ReferringExpression(instance=obj.index, sentences=_choose(kept, rng, max_sentences)))
    return expressions


def _choose(kept: dict[str, list[str]], rng: np.random.Generator, limit: int) -> list[str]:
    """Up to `limit` sentences: one per kind in a seeded order, then more from the same kinds."""
    kinds = [kind for kind in KINDS if kind in kept]
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    pools = {kind: [kept[kind][i] for i in rng.permutation(len(kept[kind]))] for kind in order}
    chosen: list[str] = []
    while len(chosen) < limit and any(pools.values()):
        for kind in order:
            if pools[kind] and len(chosen) < limit:
                chosen.append(pools[kind].pop(0))
    return chosen


class _Writer:
    """Writes the candidate sentences of each kind for the objects of one scene."""

    def __init__(self, scene: Scene, objects: list[SceneObject]) -> None:
        self.scene = scene
        self.same_class: dict[str, list[SceneObject]] = defaultdict(list)
        for o in objects:
            self.same_class[o.category].append(o)

    @staticmethod
    def nouns(obj: SceneObject) -> list[str]:
        """The object's noun phrases without an article: the class, and with its attributes when usable."""
        words = [w for w in (sentence_attribute(a) for a in obj.attributes) if w]
        return [obj.category, " ".join([*words, obj.category])] if words else [obj.category]

    def sentences(self, obj: SceneObject, kind: str) -> list[str]:
        """Candidate sentences of one kind (not yet checked for uniqueness)."""
        nouns = self.nouns(obj)
        if kind == "name":
            return [f"the {n}" for n in nouns]
        if kind == "location":
            return [f"the {n} {LOCATION_PHRASES[r]}" for r in self._regions(obj) for n in nouns]
        if kind == "size":
            return [f"the {word} {n}" for word in self._size_words(obj) for n in nouns]
        if kind == "ordinal":
            return [self._ordinal(n, direction, rank) for direction, rank in self._ranks(obj) for n in nouns]
        raise ValueError(f"unknown sentence kind {kind!r}")

    def relation_sentences(
        self, obj: SceneObject, relations: Sequence[Relation], anchor_text: Callable[[int], str | None]
    ) -> list[str]:
        """"the cup left of the plate" for each relation whose other object has a unique description."""
        texts = []
        for r in relations:
            anchor = anchor_text(r.object)
            if anchor is None:
                continue
            phrase = PREDICATE_PHRASES[r.predicate][0]
            texts.extend(f"the {n} {phrase} {anchor}" for n in self.nouns(obj))
        return texts

    def _regions(self, obj: SceneObject) -> list[str]:
        """Image thirds the object's centre is well inside while every other object of its class is well
        outside or well inside too (no centre within REGION_MARGIN of the border either way)."""
        regions = []
        for region in LOCATION_PHRASES:
            if self._clearly(obj, region) is not True:
                continue
            if all(self._clearly(o, region) is not None for o in self.same_class[obj.category]):
                regions.append(region)
        return regions

    def _clearly(self, obj: SceneObject, region: str) -> bool | None:
        """True / False when the centre is REGION_MARGIN inside / outside the region, None near its border."""
        cx = obj.region.centre[0] / self.scene.width
        cy = obj.region.centre[1] / self.scene.height
        low, high = REGION_SPLITS
        # signed distance into the region (positive inside), per axis the region constrains
        depth = {
            "left": low - cx,
            "right": cx - high,
            "top": low - cy,
            "bottom": cy - high,
            "middle": min(cx - low, high - cx, cy - low, high - cy),
        }[region]
        if depth >= REGION_MARGIN:
            return True
        if depth <= -REGION_MARGIN:
            return False
        return None

    def _size_words(self, obj: SceneObject) -> list[str]:
        others = [o for o in self.same_class[obj.category] if o.index != obj.index]
        if not others:
            return []
        area = obj.region.box_area
        words = []
        if all(area >= GENERATOR_SIZE_RATIO * o.region.box_area for o in others):
            words.extend(LARGEST_WORDS)
        if all(o.region.box_area >= GENERATOR_SIZE_RATIO * area for o in others):
            words.extend(SMALLEST_WORDS)
        return words

    def _ranks(self, obj: SceneObject) -> list[tuple[str, int]]:
        group = self.same_class[obj.category]
        if len(group) < 2:
            return []
        ranks = []
        for direction in ORDINAL_DIRECTIONS:
            axis = 0 if direction in ("left", "right") else 1
            side = self.scene.width if axis == 0 else self.scene.height
            order = sorted(group, key=lambda o: o.region.centre[axis], reverse=direction in ("right", "bottom"))
            rank = next(i for i, o in enumerate(order) if o.index == obj.index)
            if rank >= MAX_ORDINAL_RANK:
                continue
            here = obj.region.centre[axis]
            neighbours = [order[i].region.centre[axis] for i in (rank - 1, rank + 1) if 0 <= i < len(order)]
            if all(abs(here - n) >= 2 * ORDINAL_MIN_GAP * side for n in neighbours):
                ranks.append((direction, rank + 1))
        return ranks

    @staticmethod
    def _ordinal(noun: str, direction: str, rank: int) -> str:
        if rank == 1:
            return f"the {EXTREME_WORDS[direction]} {noun}"
        return f"the {ORDINAL_WORDS[rank - 1]} {noun} {ORDINAL_DIRECTIONS[direction]}"
