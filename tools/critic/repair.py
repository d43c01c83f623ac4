"""Turning `edit` verdicts into concrete repair actions.

A judge that asks for an edit says what to change in `Verdict.fix`, in words. This module maps those words
onto the actions the loop can take, deterministically:

    "drop annotation 3" / "drop instances 1, 4" / "remove annotation 2"   → drop_instances [3] / [1, 4] / [2]
    "re-render" / "rerender" / "new seed" / anything about lighting, style, quality → rerender (same layout)
    "re-layout" / "relayout" / "move" / "overlap" / "too many" / "too few"       → relayout (new layout)

An unrecognised instruction becomes a re-render: it changes the pixels and keeps the layout, the least
destructive action that still lets the critic see a new attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from synthloop.tools.types import Annotation, Decision, Verdict

RepairKind = Literal["drop_instances", "rerender", "relayout"]

_DROP = re.compile(
    r"\b(?:drop|remove|delete)\s+(?:the\s+)?(?:annotations?|instances?|boxes|box|masks?)\s+"
    r"((?:\d+(?:\s*(?:,|and)\s*)?)+)",
    re.IGNORECASE,
)
_RELAYOUT = re.compile(r"re-?layout|\bmove\b|overlap|too many|too few|reposition|rearrange", re.IGNORECASE)


@dataclass(frozen=True)
class RepairAction:
    """One concrete action, with the verdicts that asked for it (for the manifest)."""

    kind: RepairKind
    instances: tuple[int, ...] = ()
    causes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """A manifest line such as "drop_instances 2 (detector.agreement: extra box)"."""
        target = f" {', '.join(str(i) for i in self.instances)}" if self.instances else ""
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
    return RepairAction(kind="rerender")


def plan_repair(verdicts: list[Verdict]) -> RepairAction:
    """Merge the edit verdicts into one action: drops combine; otherwise relayout outranks rerender."""
    edits = [v for v in verdicts if v.decision == Decision.edit]
    actions = [(v, parse_fix(v.fix)) for v in edits]
    causes = tuple(f"{v.judge}: {v.fix or '; '.join(v.reasons) or 'edit'}" for v in edits)
    if actions and all(a.kind == "drop_instances" for _, a in actions):
        merged = tuple(sorted({i for _, a in actions for i in a.instances}))
        return RepairAction(kind="drop_instances", instances=merged, causes=causes)
    if any(a.kind == "relayout" for _, a in actions):
        return RepairAction(kind="relayout", causes=causes)
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
