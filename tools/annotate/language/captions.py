"""Captions grounded in the layout: classes, counts, attributes, coarse positions, scene and style.

1. Facts: the visible instances (annotation area > 0) with their class and layout attributes.
2. Templates: five wordings ("A kitchen counter with two red cups and a plate, photo.", "There are … in
   this image.", "Three objects: …", "A picture of … (photo). The setting is …", and one with positions of
   single objects: "…; the plate is on the left."), in a seeded order and with a seeded class order each,
   `count` of them per image. Counts are number words; a class whose instances differ in attributes is named
   with its total count only, unless its attribute groups are distinct enough to count each one exactly. The
   spec's scene and style are used only when they pass the caption checker on their own (a scene "street with
   cars" is not repeated in an image without cars).
3. Optional LLM paraphrase: one schema-constrained call per image; every paraphrase goes through
   `check_caption`, and a rejected or missing one falls back to its template caption.
4. Optional VLM captions (with the image): checked the same way; the ones that pass come first.
Each caption's source (template | llm | vlm) is returned alongside it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field

from synthloop.tools.annotate.language.caption_check import CaptionFacts, caption_facts, check_caption
from synthloop.tools.annotate.language.describe import Scene, SceneObject
from synthloop.tools.annotate.language.vocabulary import (
    LOCATION_PHRASES,
    REGION_SPLITS,
    indefinite_article,
    number_word,
    plural,
    sentence_attribute,
)
from synthloop.tools.llm.client import LLMClient, LLMError, user_message
from synthloop.tools.types import TaskSpec

logger = logging.getLogger(__name__)

PARAPHRASE_PROMPT = "caption_paraphrase"
VLM_CAPTION_PROMPT = "caption_vlm"
MIN_CAPTIONS, MAX_CAPTIONS = 2, 5
POSITION_MARGIN = 0.06  # fraction of the image side a centre must keep from a third's border


class CaptionList(BaseModel):
    """Schema of a model's captions (paraphrases in template order, or a VLM's own captions)."""

    captions: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(max_length=MAX_CAPTIONS)


@dataclass(frozen=True)
class Group:
    """Visible objects of one class described together: how many, with which attribute words."""

    category: str
    attributes: str  # "" or a sentence-ready attribute phrase ("red", "light blue")
    count: int

    def phrase(self) -> str:
        """"two red cups", "a plate", "an orange"."""
        words = " ".join(w for w in (self.attributes, self.category if self.count == 1 else plural(self.category))
                         if w)
        if self.count == 1:
            return f"{indefinite_article(words)} {words}"
        return f"{number_word(self.count)} {words}"


@dataclass(frozen=True)
class Captions:
    """Captions of one image and who wrote each (template | llm | vlm)."""

    captions: list[str]
    sources: list[str]


def facts_for(scene: Scene, spec: TaskSpec) -> CaptionFacts:
    """The checker's facts for a scene: visible instances, the spec's classes and attributes."""
    return caption_facts(
        ((o.category, o.attributes) for o in scene.objects),
        class_names=spec.class_names,
        extra_attributes=[a for o in spec.objects for a in o.attributes],
    )


def groups_of(scene: Scene) -> list[Group]:
    """Per class, either its attribute groups (when each can be counted exactly) or its total."""
    by_class: dict[str, list[SceneObject]] = defaultdict(list)
    for o in scene.objects:
        by_class[o.category].append(o)
    groups = []
    for category, members in by_class.items():
        phrases: dict[str, int] = defaultdict(int)
        for o in members:
            phrases[" ".join(w for w in (sentence_attribute(a) for a in o.attributes) if w)] += 1
        word_sets = [frozenset(p.split()) for p in phrases]
        exact = all(p for p in phrases) and not any(
            a < b or (a == b and i != j) for i, a in enumerate(word_sets) for j, b in enumerate(word_sets) if i != j
        )
        if len(phrases) == 1 or exact:
            groups.extend(Group(category, p, n) for p, n in phrases.items())
        else:
            groups.append(Group(category, "", len(members)))
    return groups


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _with_article(text: str) -> str:
    first = text.split()[0] if text.split() else ""
    if first in ("a", "an", "the", "some", "this", "my", "our"):
        return text
    return f"{indefinite_article(text)} {text}"


class _Templates:
    """The template wordings for one image (each returns None when it does not apply)."""

    def __init__(self, scene: Scene, spec: TaskSpec, facts: CaptionFacts) -> None:
        self.scene = scene
        self.groups = groups_of(scene)
        self.total = sum(g.count for g in self.groups)
        clean = spec.scene.strip().rstrip(".").lower()
        style = spec.style.strip().rstrip(".").lower()
        self.setting = _with_article(clean) if clean and not check_caption(clean, facts) else ""
        self.style = style if style and not check_caption(style, facts) else ""

    def listing(self, rng: np.random.Generator) -> str:
        order = rng.permutation(len(self.groups))
        return _join([self.groups[i].phrase() for i in order])

    def with_scene(self, rng: np.random.Generator) -> str:
        text = f"{self.setting or 'a scene'} with {self.listing(rng)}"
        return _capitalise(f"{text}, {self.style}." if self.style else f"{text}.")

    def there_are(self, rng: np.random.Generator) -> str:
        order = [self.groups[i] for i in rng.permutation(len(self.groups))]
        verb = "is" if order[0].count == 1 else "are"
        return f"There {verb} {_join([g.phrase() for g in order])} in this image."

    def counted(self, rng: np.random.Generator) -> str:
        noun = "object" if self.total == 1 else "objects"
        return f"{_capitalise(number_word(self.total))} {noun}: {self.listing(rng)}."

    def picture(self, rng: np.random.Generator) -> str:
        text = f"A picture of {self.listing(rng)}" + (f" ({self.style})." if self.style else ".")
        return f"{text} The setting is {self.setting}." if self.setting else text

    def positions(self, rng: np.random.Generator) -> str | None:
        singles = [g for g in self.groups if g.count == 1]
        clauses = []
        for g in singles:
            obj = next(o for o in self.scene.objects if o.category == g.category)
            region = _clear_region(obj, self.scene)
            if region is not None:
                named = f"{g.attributes} {g.category}" if g.attributes else g.category
                clauses.append(f"the {named} is {LOCATION_PHRASES[region]}")
        if not clauses:
            return None
        chosen = [clauses[i] for i in rng.permutation(len(clauses))[:2]]
        return _capitalise(f"{self.setting or 'a scene'} with {self.listing(rng)}; {' and '.join(chosen)}.")

    def all(self) -> list[Callable[[np.random.Generator], str | None]]:
        return [self.with_scene, self.there_are, self.counted, self.picture, self.positions]


def _clear_region(obj: SceneObject, scene: Scene) -> str | None:
    """The image third an object's centre lies well inside (left/right before top/bottom), if any."""
    cx, cy = obj.region.centre[0] / scene.width, obj.region.centre[1] / scene.height
    low, high = REGION_SPLITS
    m = POSITION_MARGIN
    if low + m <= cx <= high - m and low + m <= cy <= high - m:
        return "middle"
    for region, inside in (("left", cx < low - m), ("right", cx > high + m), ("top", cy < low - m),
                           ("bottom", cy > high + m)):
        if inside:
            return region
    return None


def template_captions(scene: Scene, spec: TaskSpec, *, seed: int, count: int = 3) -> list[str]:
    """`count` template captions in a seeded order (fewer only if fewer templates apply)."""
    if not MIN_CAPTIONS <= count <= MAX_CAPTIONS:
        raise ValueError(f"captions per image must be in [{MIN_CAPTIONS}, {MAX_CAPTIONS}], got {count}")
    facts = facts_for(scene, spec)
    rng = np.random.default_rng([seed, 0xCA7])
    if not scene.objects:
        setting = _Templates(scene, spec, facts).setting
        empty = [f"{_capitalise(setting or 'an image')} with no objects.", "Nothing is in this image.",
                 "No objects are visible.", "An empty scene.", "There are no objects in this image."]
        return [empty[i] for i in rng.permutation(len(empty))[:count]]
    templates = _Templates(scene, spec, facts)
    texts = []
    for i in rng.permutation(len(templates.all())):
        text = templates.all()[i](rng)
        if text is not None:
            texts.append(text)
        if len(texts) == count:
            break
    return texts


def _describe_facts(scene: Scene) -> str:
    groups = groups_of(scene)
    return "\n".join(f"- {g.phrase()}" for g in groups) or "- nothing"


def _ask(client: LLMClient, text: str, images: list[bytes], max_tokens: int) -> list[str] | None:
    try:
        return client.complete_json([user_message(text, images)], CaptionList, max_tokens=max_tokens).captions
    except LLMError as exc:
        logger.warning("caption model call failed, template captions kept: %s", exc)
        return None


def make_captions(
    scene: Scene,
    spec: TaskSpec,
    *,
    seed: int,
    count: int = 3,
    llm: LLMClient | None = None,
    vlm: LLMClient | None = None,
    image: Any = None,
    max_tokens: int = 400,
) -> Captions:
    """Template captions, optionally replaced by checked LLM paraphrases and preceded by checked VLM captions."""
    from synthloop.prompts import load_prompt

    facts = facts_for(scene, spec).with_allowed(spec.scene, spec.style)
    templates = template_captions(scene, spec, seed=seed, count=count)
    captions: list[str] = []
    sources: list[str] = []
    if vlm is not None and image is not None:
        prompt = load_prompt(VLM_CAPTION_PROMPT).render(count=str(count))
        for text in _ask(vlm, prompt, [_png(image)], max_tokens) or []:
            text = text.strip()
            if len(captions) < count and text not in captions and not check_caption(text, facts):
                captions.append(text)
                sources.append("vlm")
    remaining = templates[: count - len(captions)]
    paraphrases: list[str] = []
    if llm is not None and remaining:
        prompt = load_prompt(PARAPHRASE_PROMPT).render(
            facts=_describe_facts(scene), captions="\n".join(f"{k + 1}. {t}" for k, t in enumerate(remaining))
        )
        paraphrases = _ask(llm, prompt, [], max_tokens) or []
    for k, template in enumerate(remaining):
        candidate = paraphrases[k].strip() if k < len(paraphrases) else ""
        use = bool(candidate) and candidate != template and candidate not in captions and not check_caption(
            candidate, facts)
        captions.append(candidate if use else template)
        sources.append("llm" if use else "template")
    return Captions(captions=captions, sources=sources)


def _png(image: Any) -> bytes:
    from synthloop.tools.io import encode_png

    return encode_png(image)
