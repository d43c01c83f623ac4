"""The embedded critic: every rule and pixel judge that needs no model, in a fixed order.

`make_judges` (agent) and `synthloop critique` (tools/critic/audit.py) both build their judges here, so the
loop and an audit of a finished dataset judge alike.
"""

from __future__ import annotations

from synthloop.tools.critic.base import Judge
from synthloop.tools.critic.duplicates import NEAR_DUPLICATE_MIN_SIMILARITY, DuplicateIndex, DuplicateJudge
from synthloop.tools.critic.pixels import BoundaryEvidenceJudge, ImageQualityJudge
from synthloop.tools.critic.rules import (
    ClassBalanceJudge,
    ContentJudge,
    GeometryJudge,
    MaskBoxJudge,
    OcclusionJudge,
    TinyObjectJudge,
    TruncationJudge,
)


def embedded_judges(
    duplicates: DuplicateIndex,
    *,
    min_box_side_px: float = 4.0,
    min_visible_fraction: float = 0.25,
    near_duplicate_min_similarity: float = NEAR_DUPLICATE_MIN_SIMILARITY,
    min_area_fraction: float = 0.0004,
    max_truncated_fraction: float = 0.5,
    pixel_checks: bool = True,
    boundary_evidence: bool | None = None,
    class_balance: ClassBalanceJudge | None = None,
    content_checks: bool = True,
) -> list[Judge]:
    """Rule judges (geometry, mask/box, occlusion, truncation, tiny, content, duplicates) and, with
    `pixel_checks`, the image-quality and boundary-evidence judges (`boundary_evidence` overrides the latter:
    the loop turns it off for exact compositor labels). `content_checks=False` leaves out the spec's per-class
    count check (an audit of a dataset made without a spec has no counts to hold)."""
    judges: list[Judge] = [
        GeometryJudge(min_side_px=min_box_side_px),
        MaskBoxJudge(),
        OcclusionJudge(min_visible_fraction=min_visible_fraction),
        TruncationJudge(max_cut=max_truncated_fraction),
        TinyObjectJudge(min_area_fraction=min_area_fraction),
    ]
    if content_checks:
        judges.append(ContentJudge())
    if pixel_checks:
        judges.append(ImageQualityJudge())
    if pixel_checks if boundary_evidence is None else boundary_evidence:
        judges.append(BoundaryEvidenceJudge())
    if class_balance is not None:
        judges.append(class_balance)
    judges.append(DuplicateJudge(duplicates, min_similarity=near_duplicate_min_similarity))
    return judges
