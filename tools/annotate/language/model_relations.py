"""Functional and interaction relations from a model, kept only when a second model check agrees (SVG style).

1. Propose: one schema-constrained call lists at most `max_relations` relations ("holding", "sitting on",
   "parked next to") between the visible objects, by index. The proposer is the LLM when one is given (it reads
   the object list), else the VLM (it also sees the image with numbered boxes).
2. Filter by rules: indices must name two different visible objects; the predicate must be a short lowercase
   phrase; a spatial predicate (or a synonym: "next to" → near) is the rules' business, so it is dropped here
   (the rule relations already hold every spatial relation that is clearly true).
3. Check: one call asks the checker (the VLM when one is given, with the image, else the LLM) for a verdict
   per candidate: holds, and a confidence. A candidate is kept when it holds with confidence ≥ `min_score`;
   its `source` names the proposer (llm | vlm, or the requesting layout's source) and `score` the confidence.
Any model failure keeps no model relation (logged), never a guess.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from synthloop.tools.annotate.language.describe import Scene
from synthloop.tools.annotate.language.vocabulary import PREDICATE_SYNONYMS, SPATIAL_PREDICATES
from synthloop.tools.llm.client import LLMClient, LLMError, user_message
from synthloop.tools.types import Relation

logger = logging.getLogger(__name__)

PROPOSE_PROMPT = "relations_propose"
CHECK_PROMPT = "relations_check"
MAX_PROPOSALS = 16
_PREDICATE = re.compile(r"^[a-z][a-z \-]{0,39}$")


class ProposedRelation(BaseModel):
    """One proposed relation between two object indices."""

    subject: int = Field(ge=0, le=999)
    predicate: str = Field(min_length=1, max_length=60)
    object: int = Field(ge=0, le=999)


class RelationProposals(BaseModel):
    """Schema of the proposer's answer."""

    relations: list[ProposedRelation] = Field(default_factory=list, max_length=MAX_PROPOSALS)


class RelationVerdict(BaseModel):
    """The checker's verdict on candidate number `index` (1-based)."""

    index: int = Field(ge=1, le=MAX_PROPOSALS * 2)
    holds: bool
    confidence: float = Field(ge=0.0, le=1.0)


class RelationVerdicts(BaseModel):
    """Schema of the checker's answer."""

    verdicts: list[RelationVerdict] = Field(default_factory=list, max_length=MAX_PROPOSALS * 2)


def normal_predicate(text: str) -> str | None:
    """A predicate in normal form (lowercase, single spaces, canonical spatial names), or None if unusable."""
    words = " ".join(text.lower().replace("_", " ").strip().strip(".!?,;").split())
    words = PREDICATE_SYNONYMS.get(words, words)
    return words if _PREDICATE.match(words) else None


def is_spatial(predicate: str) -> bool:
    """True for predicates the geometry rules decide."""
    return predicate in SPATIAL_PREDICATES


def describe_objects(scene: Scene) -> str:
    """One line per visible object: index, class, attributes, box."""
    lines = []
    for o in scene.objects:
        x0, y0, x1, y1 = o.region.box
        attributes = f" ({', '.join(o.attributes)})" if o.attributes else ""
        lines.append(f"{o.index}: {o.category}{attributes} at {x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}")
    return "\n".join(lines) or "(none)"


class ModelRelations:
    """Proposes and checks non-spatial relations with the given clients (either may be None)."""

    def __init__(self, llm: LLMClient | None, vlm: LLMClient | None, *, image: Any = None,
                 annotation_picture: Any = None, max_tokens: int = 600) -> None:
        """`annotation_picture`: the image with numbered boxes, shown to the VLM (the plain image otherwise)."""
        self.llm, self.vlm = llm, vlm
        self.picture = annotation_picture if annotation_picture is not None else image
        self.max_tokens = max_tokens

    @property
    def available(self) -> bool:
        """A proposer and a checker exist."""
        return self.llm is not None or (self.vlm is not None and self.picture is not None)

    def _images(self, client: LLMClient) -> list[bytes]:
        if client is self.vlm and self.picture is not None:
            from synthloop.tools.io import encode_png

            return [encode_png(self.picture)]
        return []

    def _checker(self) -> tuple[LLMClient | None, str]:
        if self.vlm is not None and self.picture is not None:
            return self.vlm, "vlm"
        return self.llm, "llm"

    def propose(self, scene: Scene, *, max_relations: int) -> tuple[list[Relation], str]:
        """Rule-filtered proposals (source = proposer) and the proposer's name."""
        from synthloop.prompts import load_prompt

        client, name = (self.llm, "llm") if self.llm is not None else (self.vlm, "vlm")
        if client is None or max_relations <= 0 or len(scene.objects) < 2:
            return [], name
        text = load_prompt(PROPOSE_PROMPT).render(objects=describe_objects(scene), max_relations=str(max_relations))
        try:
            answer = client.complete_json([user_message(text, self._images(client))], RelationProposals,
                                          max_tokens=self.max_tokens)
        except LLMError as exc:
            logger.warning("relation proposals failed, none kept: %s", exc)
            return [], name
        visible = {o.index for o in scene.objects}
        found: dict[tuple[int, str, int], Relation] = {}
        for p in answer.relations:
            predicate = normal_predicate(p.predicate)
            if predicate is None or is_spatial(predicate) or p.subject == p.object:
                continue
            if p.subject in visible and p.object in visible:
                found.setdefault((p.subject, predicate, p.object),
                                 Relation(subject=p.subject, predicate=predicate, object=p.object, source=name))
        return list(found.values())[:max_relations], name

    def check(self, scene: Scene, candidates: Sequence[Relation], *, min_score: float) -> list[Relation]:
        """The candidates the checker confirms (confidence ≥ min_score), with its confidence as score."""
        from synthloop.prompts import load_prompt

        client, _ = self._checker()
        if client is None or not candidates:
            return []
        names = {o.index: o.category for o in scene.objects}
        listing = "\n".join(
            f"{k + 1}. {r.subject} ({names[r.subject]}) {r.predicate} {r.object} ({names[r.object]})"
            for k, r in enumerate(candidates)
        )
        text = load_prompt(CHECK_PROMPT).render(objects=describe_objects(scene), relations=listing)
        try:
            answer = client.complete_json([user_message(text, self._images(client))], RelationVerdicts,
                                          max_tokens=self.max_tokens)
        except LLMError as exc:
            logger.warning("relation check failed, no model relation kept: %s", exc)
            return []
        verdicts: dict[int, RelationVerdict] = {}
        for v in answer.verdicts:
            verdicts.setdefault(v.index, v)  # a repeated index counts once: its first verdict
        kept = []
        for k, r in enumerate(candidates):
            v = verdicts.get(k + 1)
            if v is not None and v.holds and v.confidence >= min_score:
                kept.append(r.model_copy(update={"score": round(float(v.confidence), 4)}))
        return kept
