"""Segment-anything with box prompts from the layout: masks for images whose pixels are not exact.

A generator (diffusion) was told to draw each layout object inside its layout box; SAM finds the object's
pixels there. Per image:
1. check the render (size, dtype); an image without layout objects gives an empty annotation;
2. with `detector:` configured, the detector verifies each layout box and refines the ones it confirms
   (`tools/annotate/detector.py`); otherwise the prompts are the layout boxes;
3. one image embedding (the heavy ViT encoder runs once per image);
4. one prompt call with all boxes of the image (a batched prompt: the mask decoder runs on every box at once);
5. per box the candidate mask with the highest predicted IoU (SAM proposes 3 with `multimask`), upscaled to
   the image, kept inside the prompt box grown by `box_margin` of its size on each side;
6. one instance per layout object, in layout order (`layout_index`, so relations stay valid): box = the
   mask's tight box, area = mask area, RLE mask, score = predicted IoU, and a certificate (`certificate.py`:
   layout IoU, sam_iou, detector evidence). An object SAM cannot find (predicted IoU below
   `min_predicted_iou`, or an empty mask) is kept with area 0, an empty box and a certificate of 0: the
   critic decides, nothing is dropped here;
7. with `vlm:` configured, one VLM call per image answers yes/no per instance (`vlm_check.py`), added to the
   certificates.

Models (`model`): a transformers `SamModel` folder written by `save_pretrained`, or a hub id already in the
local cache (`facebook/sam-vit-base`, `-large`, `-huge`): the primary path (`sam_transformers.py`). A file
ending in `.pth` / `.pt` is an original segment-anything checkpoint (`sam_vit_h_4b8939.pth` …), built with
`model_type` (`sam_segment_anything.py`). SAM 2 is its own backend (`sam2.py`). Inference is deterministic:
the same image and layout give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.annotate.base import AnnotateRequest, BaseAnnotator
from synthloop.tools.annotate.certificate import certify, layout_iou
from synthloop.tools.annotate.detector import BoxCheck, BoxVerifier, DetectorBlock, check_image, make_verifier
from synthloop.tools.annotate.vlm_check import VLMEndpoint, add_vlm_evidence, vlm_presence
from synthloop.tools.backend import BackendBlock, BackendError, Capabilities
from synthloop.tools.geometry import Box, scale_box
from synthloop.tools.masks import encode_rle, mask_bbox
from synthloop.tools.types import Annotation, Instance, Layout, Task

CHECKPOINT_SUFFIXES = (".pth", ".pt")
UPSCALE_CHUNK = 16  # boxes whose masks are upscaled together (bounds memory at large image sizes)


class SamError(BackendError):
    """A SAM model cannot be loaded or run: missing files or packages, bad settings; one line (a `BackendError`,
    so the agent reports it as a user error)."""


class MaskPredictor(Protocol):
    """A promptable segmenter: embed an image once, then decode masks for many boxes of it in one call."""

    id: str

    def embed(self, image: np.ndarray) -> Any:
        """The image embedding of an (H, W, 3) uint8 RGB image (opaque to the caller)."""
        ...

    def predict(self, embedding: Any, boxes: np.ndarray, *, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        """For (n, 4) pixel xyxy boxes: (n, H, W) bool masks of the best-scoring candidate per box and their
        predicted IoUs (n,), from one batched prompt call."""
        ...


class BoxPromptOptions(BaseModel):
    """Options every box-prompted annotator (SAM, SAM 2) shares: how masks are kept, and the extra witnesses."""

    model_config = ConfigDict(extra="forbid")

    min_predicted_iou: float = Field(default=0.5, ge=0.0, le=1.0,
                                     description="Below this predicted IoU the object counts as not found (area 0).")
    multimask: bool = Field(default=True, description="Ask for 3 candidate masks per box, keep the best scored.")
    box_margin: float | None = Field(default=0.1, ge=0.0, le=1.0,
                                     description="Keep masks inside the prompt box grown by this fraction of its "
                                                 "size per side; null = no limit.")
    detector: DetectorBlock | None = Field(
        default=None, description="Verify and refine the layout boxes with a detector first: "
                                  "{backend: owlv2, model: DIR, ...detector options}.")
    detector_iou: float = Field(default=0.5, gt=0.0, le=1.0,
                                description="IoU at which a detection confirms (and replaces) a layout box.")
    detector_min_score: float = Field(default=0.3, ge=0.0, le=1.0, description="Detections below are ignored.")
    vlm: VLMEndpoint | None = Field(default=None, description="Ask a VLM yes/no per instance (certificate source "
                                                              "'vlm'): {base_url: http://host/v1, model: NAME}.")


class SamOptions(BoxPromptOptions):
    """Options of the SAM annotator."""

    model: str = Field(min_length=1, description="transformers SamModel folder or cached hub id "
                                                 "(facebook/sam-vit-base), or a segment-anything .pth checkpoint.")
    model_type: Literal["vit_b", "vit_l", "vit_h"] = Field(
        default="vit_h", description="Architecture of a segment-anything .pth checkpoint (ignored otherwise).")
    device: str = Field(default="auto", description="auto (cuda when available, else cpu) | cpu | cuda[:N]")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(default="float32", description="Used off the CPU.")


class BoxPromptedAnnotator(BaseAnnotator):
    """The box-prompted segmentation steps shared by SAM and SAM 2 (module docstring) over any `MaskPredictor`;
    the registered subclasses load theirs from their options."""

    capabilities = Capabilities(batched=True, device="auto", provides_masks=True)
    source = "sam"

    def __init__(self, predictor: MaskPredictor, *, min_predicted_iou: float = 0.5, multimask: bool = True,
                 box_margin: float | None = 0.1, verifier: BoxVerifier | None = None,
                 vlm: VLMEndpoint | None = None) -> None:
        """An annotator over a loaded predictor (SAM's constructor loads one; tests and evals pass their own)."""
        self.predictor = predictor
        self.min_predicted_iou = min_predicted_iou
        self.multimask = multimask
        self.box_margin = box_margin
        self.verifier = verifier
        self.vlm = vlm
        self.vlm_client = vlm.client() if vlm is not None else None
        self.id = predictor.id + (f"+{verifier.detector.id}" if verifier is not None else "")

    def annotate_batch(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """One annotation per request, in order: one embedding and one prompt call per image."""
        return [self._annotate(r) for r in requests]

    def _annotate(self, request: AnnotateRequest) -> Annotation:
        layout, image = request.layout, request.render.image
        check_image(image, layout)
        relations = list(layout.relations) if Task.scene_graph in request.spec.tasks else []
        if not layout.objects:
            return Annotation(instances=[], relations=relations)
        checks = self._prompts(image, layout)
        embedding = self.predictor.embed(image)
        masks, scores = self.predictor.predict(embedding, np.array([c.box for c in checks], dtype=np.float64),
                                               multimask=self.multimask)
        if masks.shape != (len(checks), layout.height, layout.width) or scores.shape != (len(checks),):
            raise SamError(f"{self.predictor.id} returned masks {masks.shape} and scores {scores.shape} for "
                           f"{len(checks)} boxes on a {layout.width}x{layout.height} image")
        instances = [self._instance(layout, index, check, masks[index], float(scores[index]))
                     for index, check in enumerate(checks)]
        if self.vlm_client is not None:
            answers = vlm_presence(self.vlm_client, image, instances, class_names=request.spec.class_names,
                                   max_tokens=self.vlm.max_tokens)
            instances = add_vlm_evidence(instances, answers)
        return Annotation(instances=instances, relations=relations)

    def _prompts(self, image: np.ndarray, layout: Layout) -> list[BoxCheck]:
        if self.verifier is not None:
            return self.verifier.check(image, layout)
        return [BoxCheck(scale_box(obj.box, layout.width, layout.height), False, None, None)
                for obj in layout.objects]

    def _instance(self, layout: Layout, index: int, check: BoxCheck, mask: np.ndarray, score: float) -> Instance:
        obj = layout.objects[index]
        score = min(1.0, max(0.0, score)) if np.isfinite(score) else 0.0
        if self.box_margin is not None:
            mask = mask & _box_window(check.box, self.box_margin, layout.width, layout.height)
        found = score >= self.min_predicted_iou and bool(mask.any())
        if not found:
            mask = np.zeros_like(mask)
        bbox = mask_bbox(mask)
        placed = scale_box(obj.box, layout.width, layout.height)
        sources = {"layout": layout_iou(placed, bbox), "sam_iou": score if found else 0.0, **check.sources()}
        return Instance(category=obj.category, bbox=bbox, area=int(mask.sum()), segmentation=encode_rle(mask),
                        source=self.source, layout_index=index, score=round(score, 4), certificate=certify(sources))


def _box_window(box: Box, margin: float, width: int, height: int) -> np.ndarray:
    """A boolean (height, width) window: the pixel xyxy box grown by `margin` × its size on each side."""
    x0, y0, x1, y1 = box
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    window = np.zeros((height, width), dtype=bool)
    window[max(0, int(np.floor(y0 - dy))):min(height, int(np.ceil(y1 + dy))),
           max(0, int(np.floor(x0 - dx))):min(width, int(np.ceil(x1 + dx)))] = True
    return window


class SamAnnotator(BoxPromptedAnnotator):
    """Masks from segment-anything prompted with the layout boxes (optionally detector-refined), certified."""

    id = "sam"
    Options = SamOptions
    requires = ("torch",)

    def __init__(self, model: str, *, model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_h", device: str = "auto",
                 dtype: str = "float32", min_predicted_iou: float = 0.5, multimask: bool = True,
                 box_margin: float | None = 0.1, detector: BackendBlock | dict[str, Any] | None = None,
                 detector_iou: float = 0.5, detector_min_score: float = 0.3,
                 vlm: VLMEndpoint | dict[str, Any] | None = None) -> None:
        verifier = None if detector is None else make_verifier(detector, iou=detector_iou,
                                                               min_score=detector_min_score)
        predictor = load_predictor(model, model_type=model_type, device=device, dtype=dtype)
        super().__init__(predictor, min_predicted_iou=min_predicted_iou, multimask=multimask, box_margin=box_margin,
                         verifier=verifier, vlm=VLMEndpoint.model_validate(vlm) if vlm is not None else None)


def load_predictor(model: str, *, model_type: str = "vit_h", device: str = "auto",
                   dtype: str = "float32") -> MaskPredictor:
    """A `.pth` / `.pt` file → the segment-anything predictor; anything else → the transformers one."""
    if Path(model).suffix in CHECKPOINT_SUFFIXES:
        from synthloop.tools.annotate.sam_segment_anything import SegmentAnythingPredictor

        return SegmentAnythingPredictor(model, model_type=model_type, device=device, dtype=dtype)
    from synthloop.tools.annotate.sam_transformers import TransformersSamPredictor

    return TransformersSamPredictor(model, device=device, dtype=dtype)


def best_candidates(torch: Any, logits: Any, scores: Any) -> tuple[Any, np.ndarray]:
    """From (n, k, h, w) low-resolution mask logits and (n, k) predicted IoUs: the (n, 1, h, w) logits of each
    box's best-scored candidate and its score (n,) as float64 numpy. Ties go to the first candidate."""
    best = scores.float().argmax(dim=1)
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, best][:, None].float(), scores[rows, best].float().cpu().numpy().astype(np.float64)
