"""Human-readable text for specs and run results, shared by the CLI and the chat front-ends."""

from __future__ import annotations

from collections.abc import Iterable

from synthloop.agent.runner import RunSummary
from synthloop.tools.types import Notice, TaskSpec


def format_spec(spec: TaskSpec) -> str:
    """A few lines describing what a spec will build, with every defaulted field called out."""
    objects = ", ".join(
        f"{o.name} ×{o.min_count}–{o.max_count}" + (f" ({', '.join(o.attributes)})" if o.attributes else "")
        for o in spec.objects
    )
    lines = [
        f"  images     {spec.n_images} at {spec.width}×{spec.height}, seed {spec.seed}",
        f"  objects    {objects}",
        f"  tasks      {', '.join(t.value for t in spec.tasks)}",
        f"  formats    {', '.join(f.value for f in spec.formats)}",
        f"  difficulty {spec.difficulty.value}",
        "  splits     " + ", ".join(f"{n} {getattr(spec.splits, n):.0%}" for n in spec.splits.names()),
    ]
    if spec.scene or spec.style:
        lines.append(f"  scene      {' / '.join(x for x in (spec.scene, spec.style) if x)}")
    if spec.defaults_used:
        lines.append("  defaults   " + "; ".join(spec.defaults_used))
    lines += [f"  {line}" for line in format_notices(spec.notices)]
    if spec.plan_notes:
        lines.append("  objects from")
        lines += [f"    {note}" for note in spec.plan_notes]
    for question in spec.questions:
        lines.append(f"  question   {question.text}")
    return "\n".join(lines)


def format_notices(notices: Iterable[Notice]) -> list[str]:
    """One line per notice: 'not understood: …' (with why, when known), 'cannot deliver: … because …'."""
    lines = []
    for notice in notices:
        label = "not understood" if notice.kind == "not_understood" else "cannot deliver"
        joint = " because " if notice.kind == "cannot_deliver" else " — "
        lines.append(f"{label}: {notice.text}" + (joint + notice.reason if notice.reason else ""))
    return lines


def format_run(summary: RunSummary) -> str:
    """The closing summary of a run: kept / rejected / time / where the files are."""
    rate = summary.kept / summary.seconds if summary.seconds > 0 else 0.0
    lines = [
        f"kept {summary.kept}/{summary.n_images} images, rejected {summary.rejected} attempts, "
        f"{summary.seconds:.1f} s ({rate:.1f} images/s)",
    ]
    if summary.stop_reason:
        lines.append(f"stopped early: {summary.stop_reason}")
    if summary.exported:
        out = summary.out_dir
        lines.append(f"dataset      {out}/")
        lines.append(f"  COCO       {out}/annotations/")
        if summary.spec is not None and any(f.value == "yolo" for f in summary.spec.formats):
            lines.append(f"  YOLO       {out}/yolo/data.yaml")
        if summary.spec is not None and any(f.value == "hf" for f in summary.spec.formats):
            lines.append(f"  HF         {out}/hf/")
        lines.append(f"  manifest   {out}/manifest.jsonl   rejected: {out}/rejected.jsonl")
        lines.append(f"  card       {out}/card.md")
    return "\n".join(lines)
