"""OWLv2 / OWL-ViT open-vocabulary detection through transformers.

Each class name becomes a text query ("a photo of a cup"); the model scores every image patch's box against
every query. Boxes come back in pixels of the input image (OWLv2 pads to a square before resizing; its
post-processing undoes that). Loads `Owlv2ForObjectDetection` + `Owlv2Processor` (or the OWL-ViT pair) from a
local directory or a cached hub id, e.g. `google/owlv2-base-patch16-ensemble`. Registered as `owlv2`
(`OwlDetector`) and `owlvit` (`OwlVitDetector`) in `registry.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from synthloop.tools.backend import Backend, Capabilities
from synthloop.tools.critic.detector import Detection, DetectorError
from synthloop.tools.critic.detectors._hf import (
    DetectorModelOptions,
    check_model_location,
    import_torch_transformers,
    load_pretrained,
    resolve_device,
    resolve_dtype,
)


class OwlOptions(DetectorModelOptions):
    """Options of the OWLv2 / OWL-ViT detector backends."""

    query_template: str = Field(default="a photo of a {}", description="Text query per class; '{}' = class name.")

    @field_validator("query_template")
    @classmethod
    def _has_slot(cls, value: str) -> str:
        if "{}" not in value:
            raise ValueError(f"query_template must contain '{{}}' for the class name: {value!r}")
        return value


class OwlDetector(Backend):
    """Open-vocabulary detector over OWLv2 (`variant="owlv2"`) or OWL-ViT (`variant="owlvit"`)."""

    id = "owlv2"
    Options = OwlOptions
    capabilities = Capabilities(device="auto")
    requires = ("torch", "transformers")
    variant: ClassVar[Literal["owlv2", "owlvit"]] = "owlv2"
    vocabulary = None

    def __init__(self, model: str, *, variant: Literal["owlv2", "owlvit"] | None = None, device: str = "auto",
                 dtype: str = "float32", score_threshold: float = 0.05, max_detections: int = 100,
                 query_template: str = "a photo of a {}") -> None:
        if "{}" not in query_template:
            raise DetectorError(f"query_template must contain '{{}}' for the class name: {query_template!r}")
        variant = variant or type(self).variant
        torch, transformers = import_torch_transformers(variant)
        location = check_model_location(model)
        if variant == "owlv2":
            model_cls, processor_cls = transformers.Owlv2ForObjectDetection, transformers.Owlv2Processor
        elif variant == "owlvit":
            model_cls, processor_cls = transformers.OwlViTForObjectDetection, transformers.OwlViTProcessor
        else:
            raise DetectorError(f"unknown OWL variant '{variant}' (owlv2 | owlvit)")
        self._torch = torch
        self.device = resolve_device(torch, device)
        self.dtype = resolve_dtype(torch, dtype, self.device)
        self.processor = load_pretrained(processor_cls, location, variant)
        self.model = load_pretrained(model_cls, location, variant).to(self.device, self.dtype).eval()
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.query_template = query_template
        self.id = f"{variant}:{model}"

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        """Detections of `class_names` in an HxWx3 uint8 RGB image, boxes in pixel xywh."""
        if not class_names:
            return []
        torch = self._torch
        height, width = image.shape[:2]
        queries = [[self.query_template.format(name) for name in class_names]]
        inputs = self.processor(text=queries, images=[image], return_tensors="pt")
        inputs = {k: self._to_device(v) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        results = self.processor.image_processor.post_process_object_detection(
            outputs=outputs, threshold=self.score_threshold, target_sizes=[(height, width)])[0]
        return _to_detections(results, class_names, width, height, self.max_detections)

    def _to_device(self, value: Any) -> Any:
        if not hasattr(value, "to"):
            return value
        if value.is_floating_point():
            return value.to(self.device, self.dtype)
        return value.to(self.device)


class OwlVitDetector(OwlDetector):
    """Open-vocabulary detector over OWL-ViT (the first OWL generation)."""

    id = "owlvit"
    variant = "owlvit"


def _to_detections(results: dict[str, Any], class_names: list[str], width: int, height: int,
                   limit: int) -> list[Detection]:
    """Post-processed tensors (xyxy px, query indices) → clipped xywh `Detection`s, best first."""
    scores = results["scores"].float().cpu().numpy()
    labels = results["labels"].cpu().numpy()
    boxes = results["boxes"].float().cpu().numpy()
    detections = []
    for index in np.argsort(-scores, kind="stable")[:limit]:
        x0, y0, x1, y1 = np.clip(boxes[index], 0, [width, height, width, height]).tolist()
        if x1 > x0 and y1 > y0:
            detections.append(Detection(class_names[int(labels[index])], (x0, y0, x1 - x0, y1 - y0),
                                        float(scores[index])))
    return detections
