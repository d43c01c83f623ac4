"""Certificate judge: thresholds the label certificate every annotator writes (`Instance.certificate`).

A certificate names the sources that saw an instance and how well they agree (formula in
`tools/annotate/certificate.py`). Instances whose agreement is below `min_agreement` are not trusted:
- `policy="edit"` (default): edit "drop annotation N" (all low ones in one instruction, which the repair step
  applies in place), unless nothing certified would be left: then reject (the image and its labels disagree
  wholesale, a re-render is the repair);
- `policy="reject"`: any low instance rejects the sample.
Instances without a certificate are not judged (an annotator that writes none makes no claim to check).
Config: `judges: [{backend: rules.certificate, min_agreement: 0.5}]`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.types import Decision, Instance, Verdict


class CertificateOptions(BaseModel):
    """Options of the certificate judge."""

    model_config = ConfigDict(extra="forbid")

    min_agreement: float = Field(default=0.5, ge=0.0, le=1.0,
                                 description="Instances whose certificate agreement is below this are not trusted.")
    policy: Literal["edit", "reject"] = Field(default="edit",
                                              description="edit: drop the low instances; reject: reject the sample.")


class CertificateJudge(BaseJudge):
    """Drops (edit) or rejects instances whose label certificate agreement is below a threshold."""

    id = "rules.certificate"
    Options = CertificateOptions

    def __init__(self, min_agreement: float = 0.5, policy: Literal["edit", "reject"] = "edit") -> None:
        if not 0.0 <= min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement}")
        if policy not in ("edit", "reject"):
            raise ValueError(f"unknown policy '{policy}' (edit | reject)")
        self.min_agreement = min_agreement
        self.policy = policy

    def judge(self, item: JudgeInput) -> Verdict:
        """One reason per untrusted instance, naming its agreement and sources."""
        instances = list(item.sample.annotation.instances) if item.sample.annotation else []
        certified = [i for i, inst in enumerate(instances) if inst.certificate is not None]
        low = [i for i in certified if instances[i].certificate.agreement < self.min_agreement]
        agreements = [instances[i].certificate.agreement for i in certified]
        scores = {"min_agreement": min(agreements, default=1.0), "n_certified": float(len(certified)),
                  "n_low": float(len(low))}
        reasons = [_reason(i, instances[i], self.min_agreement) for i in low]
        if not low:
            return Verdict(judge=self.id, decision=Decision.accept, reasons=reasons, scores=scores)
        if self.policy == "edit" and len(low) < len(certified):
            noun = "annotations" if len(low) > 1 else "annotation"
            fix = f"drop {noun} {', '.join(map(str, low))}"
            return Verdict(judge=self.id, decision=Decision.edit, reasons=reasons, scores=scores, fix=fix)
        if self.policy == "edit":
            reasons.append(f"no certified instance reaches agreement {self.min_agreement:.2f}")
        return Verdict(judge=self.id, decision=Decision.reject, reasons=reasons, scores=scores)


def _reason(index: int, inst: Instance, limit: float) -> str:
    certificate = inst.certificate
    sources = ", ".join(f"{name} {value:.2f}" for name, value in certificate.sources.items()) or "no source"
    return (f"instance {index} ({inst.category}): certificate agreement {certificate.agreement:.2f} "
            f"< {limit:.2f} ({sources})")
