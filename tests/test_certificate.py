"""Label certificates: the agreement formula, the exact annotator's certificates, the certificate judge and its
repair, and the certificate key in the COCO export."""

from __future__ import annotations

import math

import numpy as np
import pytest
from contracts import JudgeContract

from synthloop.tools.annotate.certificate import agreement, certify, layout_iou, render_mask_evidence
from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.certificate import CertificateJudge
from synthloop.tools.critic.registry import JUDGES
from synthloop.tools.critic.repair import drop_instances, plan_repair
from synthloop.tools.export.coco import build_coco
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import (
    Annotation,
    Certificate,
    Decision,
    Instance,
    Layout,
    LayoutObject,
    ObjectSpec,
    Relation,
    Sample,
    TaskSpec,
)

H, W = 40, 50
SPEC = TaskSpec(objects=[ObjectSpec(name="cup"), ObjectSpec(name="plate")], width=W, height=H)


def test_agreement_is_the_geometric_mean_of_the_witnesses() -> None:
    assert agreement({"layout": 0.81, "sam_iou": 0.64}) == pytest.approx(math.sqrt(0.81 * 0.64))
    three = {"layout": 0.9, "sam_iou": 0.8, "detector_iou": 0.7, "detector_score": 0.5}
    assert agreement(three) == pytest.approx((0.9 * 0.8 * 0.7 * 0.5) ** 0.25)
    # With an exact mask the layout IoU measures occlusion, which render_mask already carries: not a witness.
    assert agreement({"layout": 0.3, "render_mask": 1.0}) == 1.0
    assert agreement({"layout": 0.9, "sam_iou": 0.0}) == 0.0, "a source that did not see it makes it 0"
    assert agreement({}) == 0.0
    assert agreement({"layout": 1.0}) == 0.0, "the layout alone did not look at the pixels"
    certificate = certify({"layout": 0.123456, "sam_iou": 1.7, "vlm": -1.0})
    assert certificate.sources == {"layout": 0.1235, "sam_iou": 1.0, "vlm": 0.0}
    assert certificate.agreement == 0.0


def test_render_mask_evidence_drops_only_for_mostly_hidden_objects() -> None:
    assert render_mask_evidence(100, None) == 1.0
    assert render_mask_evidence(100, 0.5) == 1.0 and render_mask_evidence(100, 0.9) == 1.0
    assert render_mask_evidence(100, 0.3) == pytest.approx(0.6)
    assert render_mask_evidence(0, 1.0) == 0.0
    assert layout_iou((0, 0, 10, 10), (0, 0, 10, 5)) == pytest.approx(0.5)
    assert layout_iou((0, 0, 10, 10), (0, 0, 0, 0)) == 0.0


def test_the_exact_annotator_certifies_every_instance() -> None:
    layout = Layout(width=W, height=H, seed=0, objects=[
        LayoutObject(category="cup", box=(0.1, 0.1, 0.5, 0.6)),    # px x 5..25, y 4..24
        LayoutObject(category="plate", box=(0.3, 0.3, 0.7, 0.9)),  # px x 15..35, y 12..36
        LayoutObject(category="cup", box=(0.8, 0.1, 0.9, 0.3)),    # fully hidden
    ])
    instance_map = np.zeros((H, W), dtype=np.int32)
    instance_map[4:24, 5:25] = 1
    instance_map[12:36, 15:35] = 2  # hides the cup's lower right
    instance_map[4:24, 5:13] = 0    # and something else its left: 8×12 + 12×2 = 120 of 400 px stay visible
    render = RenderResult(image=np.zeros((H, W, 3), np.uint8), instance_map=instance_map,
                          amodal_areas=[400, 480, 20])
    cup, plate, hidden = ExactAnnotator().annotate(layout, render, SPEC).instances
    assert plate.certificate == Certificate(sources={"layout": 1.0, "render_mask": 1.0}, agreement=1.0)
    assert cup.area == 120 and cup.bbox == (13.0, 4.0, 12.0, 20.0)
    assert cup.certificate.sources == {"layout": 0.6, "render_mask": 0.6}  # visible box 240 of 400; 30% visible
    assert cup.certificate.agreement == 0.6, "a mostly hidden object is weaker evidence"
    assert hidden.certificate == Certificate(sources={"layout": 0.0, "render_mask": 0.0}, agreement=0.0)


def _sample(agreements: list[float | None]) -> JudgeInput:
    instances = [Instance(category="cup", bbox=(2.0 + 8 * k, 2.0, 6.0, 6.0), area=36,
                          certificate=None if a is None else Certificate(sources={"layout": 0.9, "sam_iou": a},
                                                                           agreement=a))
                 for k, a in enumerate(agreements)]
    relations = [Relation(subject=0, predicate="left of", object=len(instances) - 1)] if len(instances) > 1 else []
    sample = Sample(id="s", index=0, attempt=0, seed=0, split="train", image_path="images/train/s.png", width=W,
                    height=H, layout=Layout(width=W, height=H, objects=[], seed=0),
                    annotation=Annotation(instances=instances, relations=relations))
    return JudgeInput(sample=sample, image=np.zeros((H, W, 3), np.uint8), spec=SPEC)


def test_the_certificate_judge_drops_untrusted_instances_by_edit() -> None:
    judge = JUDGES.build({"backend": "rules.certificate", "min_agreement": 0.5})
    assert isinstance(judge, CertificateJudge) and judge.id == "rules.certificate"
    item = _sample([0.9, 0.2, None, 0.45, 0.7])
    verdict = judge.judge(item)
    assert verdict.decision == Decision.edit and verdict.fix == "drop annotations 1, 3"
    assert verdict.reasons == ["instance 1 (cup): certificate agreement 0.20 < 0.50 (layout 0.90, sam_iou 0.20)",
                               "instance 3 (cup): certificate agreement 0.45 < 0.50 (layout 0.90, sam_iou 0.45)"]
    assert verdict.scores == {"min_agreement": 0.2, "n_certified": 4.0, "n_low": 2.0}
    action = plan_repair([verdict])
    assert action.kind == "drop_instances" and action.instances == (1, 3)
    repaired = drop_instances(item.sample.annotation, action.instances)
    assert len(repaired.instances) == 3
    again = judge.judge(JudgeInput(item.sample.model_copy(update={"annotation": repaired}), item.image, SPEC))
    assert again.decision == Decision.accept


def test_the_certificate_judge_rejects_when_nothing_trusted_is_left_or_by_policy() -> None:
    judge = CertificateJudge(min_agreement=0.5)
    assert judge.judge(_sample([0.1, 0.3])).decision == Decision.reject
    assert judge.judge(_sample([0.1, 0.3])).reasons[-1] == "no certified instance reaches agreement 0.50"
    assert judge.judge(_sample([0.5, None])).decision == Decision.accept, "the threshold itself passes"
    assert judge.judge(_sample([None, None])).decision == Decision.accept, "no certificate, nothing to judge"
    strict = CertificateJudge(min_agreement=0.5, policy="reject")
    verdict = strict.judge(_sample([0.9, 0.2]))
    assert verdict.decision == Decision.reject and verdict.fix is None
    with pytest.raises(ValueError, match="policy"):
        JUDGES.check({"backend": "rules.certificate", "policy": "maybe"})


def test_a_certificate_reaches_the_coco_annotation() -> None:
    item = _sample([0.9, None])
    coco = build_coco(SPEC, [item.sample])
    first, second = coco["annotations"]
    assert first["certificate"] == {"sources": {"layout": 0.9, "sam_iou": 0.9}, "agreement": 0.9}
    assert "certificate" not in second


class TestCertificateJudgeContract(JudgeContract):
    backend = CertificateJudge()
