"""Rule judges reject exactly the defects they name, and accept clean samples."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tools.critic.base import JudgeInput, combine_any_reject
from synthloop.tools.critic.duplicates import (
    _BLOCK_ROWS,
    DESCRIPTOR_DIM,
    NEAR_DUPLICATE_MIN_SIMILARITY,
    NO_NEIGHBOUR,
    DuplicateIndex,
    DuplicateJudge,
    is_perceptual_hash,
    perceptual_hash,
    pixel_sha256,
    similarity,
)
from synthloop.tools.critic.rules import ContentJudge, GeometryJudge, MaskBoxJudge, OcclusionJudge
from synthloop.tools.masks import encode_rle, mask_bbox
from synthloop.tools.types import Annotation, Decision, Instance, Layout, ObjectSpec, Sample, TaskSpec, Verdict

H = W = 64
SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], width=W, height=H)


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=(H, W, 3), dtype=np.uint8)


def _instance(x0: int = 10, y0: int = 12, x1: int = 30, y1: int = 40, **overrides: object) -> Instance:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    values = {"category": "cup", "bbox": mask_bbox(mask), "area": int(mask.sum()), "segmentation": encode_rle(mask),
              "visible_fraction": 1.0}
    values.update(overrides)
    return Instance(**values)


def _item(instances: list[Instance], image: np.ndarray | None = None, sample_id: str = "000001") -> JudgeInput:
    sample = Sample(id=sample_id, index=1, attempt=0, seed=1, split="train", image_path="images/train/x.png",
                    width=W, height=H, layout=Layout(width=W, height=H, objects=[], seed=1),
                    annotation=Annotation(instances=instances))
    return JudgeInput(sample=sample, image=_image() if image is None else image, spec=SPEC)


def _reasons(verdict: Verdict) -> str:
    return " | ".join(verdict.reasons)


JUDGES = [GeometryJudge(), MaskBoxJudge(), OcclusionJudge(), ContentJudge()]


@pytest.mark.parametrize("judge", JUDGES, ids=lambda j: j.id)
def test_clean_sample_is_accepted_by_every_rule(judge) -> None:
    verdict = judge.judge(_item([_instance()]))
    assert verdict.decision == Decision.accept, verdict.reasons
    assert verdict.judge == judge.id and verdict.reasons == []


def test_geometry_rejects_degenerate_and_out_of_image_boxes() -> None:
    tiny = _instance(10, 10, 12, 30)
    verdict = GeometryJudge(min_side_px=4).judge(_item([tiny]))
    assert verdict.decision == Decision.reject and "degenerate" in _reasons(verdict)
    outside = _instance(bbox=(50.0, 10.0, 30.0, 10.0))
    verdict = GeometryJudge().judge(_item([outside]))
    assert verdict.decision == Decision.reject and "leaves the 64×64 image" in _reasons(verdict)


def test_mask_box_rejects_a_shifted_box_and_a_wrong_area() -> None:
    shifted = _instance(bbox=(20.0, 22.0, 20.0, 28.0))
    verdict = MaskBoxJudge().judge(_item([shifted]))
    assert verdict.decision == Decision.reject and "mask and box disagree" in _reasons(verdict)
    wrong_area = _instance(area=100)
    verdict = MaskBoxJudge().judge(_item([wrong_area]))
    assert verdict.decision == Decision.reject and "differs from mask area" in _reasons(verdict)


def test_occlusion_rejects_mostly_hidden_objects_only() -> None:
    assert OcclusionJudge(0.25).judge(_item([_instance(visible_fraction=0.3)])).decision == Decision.accept
    verdict = OcclusionJudge(0.25).judge(_item([_instance(visible_fraction=0.1)]))
    assert verdict.decision == Decision.reject and "90% hidden" in _reasons(verdict)


def test_content_rejects_blank_empty_and_miscounted_images() -> None:
    blank = np.full((H, W, 3), 128, np.uint8)
    verdict = ContentJudge().judge(_item([_instance()], image=blank))
    assert verdict.decision == Decision.reject and "blank" in _reasons(verdict)
    verdict = ContentJudge().judge(_item([]))
    assert "no visible annotated object" in _reasons(verdict)
    three = [_instance(), _instance(40, 40, 50, 50), _instance(2, 50, 8, 60)]
    verdict = ContentJudge().judge(_item(three))
    assert verdict.decision == Decision.reject and "3 visible cup (spec asks 1–2)" in _reasons(verdict)


def test_hashes_are_stable_and_discriminate() -> None:
    a, b = _image(1), _image(2)
    assert pixel_sha256(a) == pixel_sha256(a.copy()) != pixel_sha256(b)
    ha = perceptual_hash(a)
    assert ha == perceptual_hash(a.copy())
    assert len(ha) == 2 * DESCRIPTOR_DIM and is_perceptual_hash(ha)
    assert similarity(ha, ha) == pytest.approx(1.0, abs=1e-6)
    assert abs(similarity(ha, perceptual_hash(b))) < 0.5
    assert not is_perceptual_hash("ab" * 32) and not is_perceptual_hash("") and not is_perceptual_hash(None)
    flat = np.full((H, W, 3), 90, np.uint8)
    assert similarity(perceptual_hash(flat), ha) == 0.0  # a flat image has no structure to match


def test_duplicate_judge_finds_exact_and_near_duplicates_but_not_itself() -> None:
    index = DuplicateIndex()
    judge = DuplicateJudge(index)
    image = _image(3)
    index.add("000001", pixel_sha256(image), perceptual_hash(image))
    alone = judge.judge(_item([_instance()], image=image, sample_id="000001"))
    assert alone.decision == Decision.accept and alone.scores["nearest_similarity"] == NO_NEIGHBOUR
    exact = judge.judge(_item([_instance()], image=image.copy(), sample_id="000002"))
    assert exact.decision == Decision.reject and "exact duplicate of kept sample 000001" in _reasons(exact)
    brighter = np.clip(image.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    near = judge.judge(_item([_instance()], image=brighter, sample_id="000003"))
    assert near.decision == Decision.reject and "near duplicate of kept sample 000001" in _reasons(near)
    assert near.scores["nearest_similarity"] >= NEAR_DUPLICATE_MIN_SIMILARITY
    other = judge.judge(_item([_instance()], image=_image(4), sample_id="000004"))
    assert other.decision == Decision.accept and other.scores["nearest_similarity"] < 0.5


def _crop_resize(image: np.ndarray, crop: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image[crop:h - crop, crop:w - crop]).resize((w, h), Image.Resampling.BILINEAR))


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    h, w = image.shape[:2]
    return np.pad(image, ((dy, 0), (dx, 0), (0, 0)), mode="edge")[:h, :w]


def _gain(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


NEAR_DUPLICATES = {  # at 384²: the defect benchmark crops 1–4 px per side at this size, brightens ×1.02–1.06
    "crop 4 px + resize": lambda im: _crop_resize(im, 4),
    "crop 8 px + resize": lambda im: _crop_resize(im, 8),
    "shift 3 px": lambda im: _shift(im, 3, 3),
    "brighter ×1.06, crop 3 px": lambda im: _crop_resize(_gain(im, 1.06), 3),
    "darker ×0.9": lambda im: _gain(im, 0.9),
    "offset +12": lambda im: np.clip(im.astype(np.int16) + 12, 0, 255).astype(np.uint8),
}


@pytest.fixture(scope="module")
def compositor_index():
    """30 distinct compositor images (difficulties cycled), all kept."""
    from synthloop.evals.defects import clean_items

    items = clean_items(30, 384, seed=11)
    index = DuplicateIndex()
    for it in items:
        index.add(it.sample.id, pixel_sha256(it.image), perceptual_hash(it.image))
    return items, index


def test_distinct_compositor_images_are_not_near_duplicates(compositor_index) -> None:
    items, index = compositor_index
    judge = DuplicateJudge(index)
    for it in items:
        verdict = judge.judge(it)
        assert verdict.decision == Decision.accept, (it.sample.id, verdict.reasons)
        assert verdict.scores["nearest_similarity"] < 0.8  # calibrated: clean pairs ≤ 0.78 of 4.5M measured


@pytest.mark.parametrize("change", list(NEAR_DUPLICATES))
def test_cropped_shifted_or_relit_compositor_images_are_near_duplicates(compositor_index, change) -> None:
    items, index = compositor_index
    judge = DuplicateJudge(index)
    for it in items[:6]:
        image = NEAR_DUPLICATES[change](it.image)
        copy = JudgeInput(sample=it.sample.model_copy(update={"id": "copy"}), image=image, spec=it.spec)
        verdict = judge.judge(copy)
        assert verdict.decision == Decision.reject, (change, it.sample.id, verdict.scores)
        assert f"near duplicate of kept sample {it.sample.id}" in _reasons(verdict)


def test_index_blocks_ids_and_older_hashes() -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(-127, 128, size=(_BLOCK_ROWS + 5, DESCRIPTOR_DIM)).astype(np.int8)
    hashes = [row.tobytes().hex() for row in rows]
    index = DuplicateIndex()
    for i, h in enumerate(hashes):
        index.add(f"{i:06d}", f"sha{i}", h)
    index.add("000000", "other", hashes[1])  # idempotent for the same id
    assert len(index) == len(hashes)
    for i in (0, _BLOCK_ROWS - 1, _BLOCK_ROWS, len(hashes) - 1):  # both sides of a block boundary
        assert index.nearest("query", hashes[i]) == (f"{i:06d}", pytest.approx(1.0, abs=1e-5))
        other, score = index.nearest(f"{i:06d}", hashes[i])  # never itself
        assert other != f"{i:06d}" and score < 0.5
    assert index.nearest("query", "ab" * 32) == (None, NO_NEIGHBOUR)
    index.add("legacy", "sha-legacy", "ab" * 32)  # e.g. a 64-character dHash read back from an older manifest
    assert index.exact_match("new", "sha-legacy") == "legacy" and index.exact_match("legacy", "sha-legacy") is None
    index.add("unhashed", "", "")
    assert index.exact_match("new", "") is None and len(index) == len(hashes) + 2


def test_index_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [_image(100 + i) for i in range(64)]
    hashes = [perceptual_hash(im) for im in images]
    index = DuplicateIndex()

    def add_and_look(i: int) -> str | None:
        index.add(f"{i:06d}", pixel_sha256(images[i]), hashes[i])
        return index.nearest("query", hashes[i])[0]

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(add_and_look, range(64)))
    assert len(index) == 64 and found == [f"{i:06d}" for i in range(64)]


def test_duplicate_judge_rehashes_an_older_descriptor() -> None:
    index = DuplicateIndex()
    image = _image(5)
    index.add("000001", pixel_sha256(image), perceptual_hash(image))
    near = _item([_instance()], image=np.clip(image.astype(np.int16) + 2, 0, 255).astype(np.uint8),
                 sample_id="000002")
    near = JudgeInput(sample=near.sample.model_copy(update={"phash": "ab" * 32}), image=near.image, spec=SPEC)
    assert DuplicateJudge(index).judge(near).decision == Decision.reject


def test_any_reject_ensemble() -> None:
    accept = Verdict(judge="a", decision="accept")
    edit = Verdict(judge="b", decision="edit", fix="move the cup")
    reject = Verdict(judge="c", decision="reject", reasons=["x"])
    assert combine_any_reject([accept, accept]) == Decision.accept
    assert combine_any_reject([accept, edit]) == Decision.edit
    assert combine_any_reject([edit, reject, accept]) == Decision.reject
