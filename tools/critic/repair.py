"""Turning `edit` verdicts into concrete repair actions.

A judge that asks for an edit says what to change in `Verdict.fix`, in words. This module maps those words
onto the actions the loop can take, deterministically, in this order:

    "drop annotation 3" / "drop instances 1, 4" / "remove annotation 2"   → drop_instances [3] / [1, 4] / [2]
    "re-layout" / "relayout" / "move" / "overlap" / "too many" / "too few"       → relayout (new layout)
    "re-render" / "rerender" / "new seed" / "regenerate"                         → rerender (same layout)
    an instruction about the image, led by an edit verb: "make the cup red", "brighten the image",
    "remove the fork", "add a shadow", "replace the plate with a bowl"           → edit_image (InstructDiffusion)

`edit_image` needs a renderer that edits images (`capabilities.edits_images`): `plan_repair(..., can_edit=True)`.
Without one it is a re-render, as is an instruction this module cannot place: a re-render changes the pixels
and keeps the layout, the least destructive action that still lets the critic see a new attempt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from synthloop.tools.types import Annotation, Decision, Verdict

RepairKind = Literal["drop_instances", "rerender", "relayout", "edit_image"]

_DROP = re.compile(
    r"\b(?:drop|remove|delete)\s+(?:the\s+)?(?:annotations?|instances?|boxes|box|masks?)\s+"
    r"((?:\d+(?:\s*(?:,|and)\s*)?)+)",
    re.IGNORECASE,
)
_RELAYOUT = re.compile(r"re-?layout|\bmove\b|overlap|too many|too few|reposition|rearrange", re.IGNORECASE)
_RERENDER = re.compile(r"re-?render|new seed|another seed|regenerate|render (?:it )?again", re.IGNORECASE)
# Imperative verbs that open an instruction about the pixels (InstructPix2Pix-style edit prompts).
_EDIT_VERBS = frozenset((
    "add", "adjust", "blur", "brighten", "change", "clean", "colour", "color", "cool", "darken", "desaturate",
    "enhance", "erase", "give", "increase", "lighten", "make", "paint", "put", "recolor", "recolour", "reduce",
    "remove", "replace", "saturate", "sharpen", "smooth", "swap", "tint", "turn", "warm",
))
_LABEL_WORDS = re.compile(r"\b(?:annotations?|instances?|labels?|bounding box(?:es)?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RepairAction:
    """One concrete action, with the verdicts that asked for it (for the manifest)."""

    kind: RepairKind
    instances: tuple[int, ...] = ()
    causes: tuple[str, ...] = field(default_factory=tuple)
    instruction: str = ""  # edit_image: what to change in the image

    def describe(self) -> str:
        """A manifest line such as "drop_instances 2 (detector.agreement: extra box)" or
        'edit_image "make the cup red" (vlm.pointwise: make the cup red)'."""
        target = f" {', '.join(str(i) for i in self.instances)}" if self.instances else ""
        if self.instruction:
            target = f" {json.dumps(self.instruction, ensure_ascii=False)}"
        why = f" ({'; '.join(self.causes)})" if self.causes else ""
        return f"{self.kind}{target}{why}"


def parse_fix(fix: str | None) -> RepairAction:
    """The action one edit instruction asks for."""
    text = fix or ""
    drop = _DROP.search(text)
    if drop:
        indices = tuple(sorted({int(n) for n in re.findall(r"\d+", drop.group(1))}))
        if indices:
            return RepairAction(kind="drop_instances", instances=indices)
    if _RELAYOUT.search(text):
        return RepairAction(kind="relayout")
    if not _RERENDER.search(text) and is_image_instruction(text):
        return RepairAction(kind="edit_image", instruction=" ".join(text.split()).rstrip("."))
    return RepairAction(kind="rerender")


def is_image_instruction(text: str) -> bool:
    """Whether `text` reads as an instruction about the pixels: it opens with an edit verb ("make the cup red",
    "please brighten the image") and does not talk about the labels."""
    words = re.findall(r"[a-z]+", text.lower())
    if words[:1] == ["please"]:
        words = words[1:]
    return bool(words) and words[0] in _EDIT_VERBS and len(words) > 1 and not _LABEL_WORDS.search(text)


def plan_repair(verdicts: list[Verdict], *, can_edit: bool = False) -> RepairAction:
    """Merge the edit verdicts into one action: drops combine; relayout outranks everything else; then a
    re-render (asked for, or an instruction that cannot be placed); then, when the renderer edits images
    (`can_edit`), one image edit carrying every instruction in verdict order (drops asked for alongside are
    left to the re-annotation of the edited image). Without an editor, image instructions are re-renders."""
    edits = [v for v in verdicts if v.decision == Decision.edit]
    actions = [(v, parse_fix(v.fix)) for v in edits]
    causes = tuple(f"{v.judge}: {v.fix or '; '.join(v.reasons) or 'edit'}" for v in edits)
    if actions and all(a.kind == "drop_instances" for _, a in actions):
        merged = tuple(sorted({i for _, a in actions for i in a.instances}))
        return RepairAction(kind="drop_instances", instances=merged, causes=causes)
    if any(a.kind == "relayout" for _, a in actions):
        return RepairAction(kind="relayout", causes=causes)
    instructions = list(dict.fromkeys(a.instruction for _, a in actions if a.kind == "edit_image"))
    if can_edit and instructions and all(a.kind in ("edit_image", "drop_instances") for _, a in actions):
        return RepairAction(kind="edit_image", instruction="; ".join(instructions), causes=causes)
    return RepairAction(kind="rerender", causes=causes)


def drop_instances(annotation: Annotation, indices: tuple[int, ...]) -> Annotation:
    """The annotation without the given instance indices (relations touching them dropped, others re-indexed)."""
    if any(i < 0 or i >= len(annotation.instances) for i in indices):
        raise ValueError(f"instance index out of range in {indices} (annotation has {len(annotation.instances)})")
    gone = set(indices)
    kept = [i for i in range(len(annotation.instances)) if i not in gone]
    new_index = {old: new for new, old in enumerate(kept)}
    relations = [
        r.model_copy(update={"subject": new_index[r.subject], "object": new_index[r.object]})
        for r in annotation.relations
        if r.subject in new_index and r.object in new_index
    ]
    return annotation.model_copy(update={"instances": [annotation.instances[i] for i in kept],
                                         "relations": relations})
