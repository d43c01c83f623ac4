"""Grounding DINO open-vocabulary detection through transformers.

The class names become one prompt, "cup. plate. fork.". The model scores each of its box queries against every
prompt token; a class's score for a query is the highest sigmoid score over that class's tokens (a phrase may
span several word pieces), and each query keeps its best class. This maps scores back to the exact class names
asked for, instead of decoding token text. Loads `AutoModelForZeroShotObjectDetection` + `AutoProcessor` from
a local directory or a cached hub id, e.g. `IDEA-Research/grounding-dino-tiny`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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


def class_prompt(class_names: list[str]) -> str:
    """The Grounding DINO text prompt for `class_names`: lower case, each phrase ended by a period."""
    return " ".join(f"{name.strip().lower()}." for name in class_names)


def token_spans(tokenizer: Any, class_names: list[str], input_ids: list[int]) -> list[list[int]]:
    """Token positions of each class phrase inside `input_ids` (the tokenised `class_prompt`)."""
    prompt = class_prompt(class_names)
    encoded = tokenizer(prompt, return_offsets_mapping=True)
    if list(encoded["input_ids"]) != list(input_ids):
        raise DetectorError("Grounding DINO prompt was tokenised differently from the processor's input ids")
    spans, start = [], 0
    for name in class_names:
        phrase = name.strip().lower()
        begin = prompt.index(phrase, start)
        end = begin + len(phrase)
        start = end
        spans.append([i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > a and a >= begin and b <= end])
    return spans


class GroundingDinoOptions(DetectorModelOptions):
    """Options of the Grounding DINO detector backend."""


class GroundingDinoDetector(Backend):
    """Open-vocabulary detector over Grounding DINO."""

    id = "grounding_dino"
    Options = GroundingDinoOptions
    capabilities = Capabilities(device="auto")
    requires = ("torch", "transformers")
    vocabulary = None

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "float32", score_threshold: float = 0.05,
                 max_detections: int = 100) -> None:
        torch, transformers = import_torch_transformers("grounding_dino")
        location = check_model_location(model)
        self._torch = torch
        self.device = resolve_device(torch, device)
        self.dtype = resolve_dtype(torch, dtype, self.device)
        self.processor = load_pretrained(transformers.AutoProcessor, location, "grounding_dino")
        if not getattr(self.processor.tokenizer, "is_fast", False):
            raise DetectorError("grounding_dino needs a fast tokenizer (tokenizer.json) to map tokens to classes")
        self.model = load_pretrained(transformers.AutoModelForZeroShotObjectDetection, location,
                                     "grounding_dino").to(self.device, self.dtype).eval()
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.id = f"grounding_dino:{model}"

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        """Detections of `class_names` in an HxWx3 uint8 RGB image, boxes in pixel xywh."""
        if not class_names:
            return []
        torch = self._torch
        height, width = image.shape[:2]
        inputs = self.processor(images=[image], text=class_prompt(class_names), return_tensors="pt")
        spans = token_spans(self.processor.tokenizer, class_names, inputs["input_ids"][0].tolist())
        inputs = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                  for k, v in inputs.items() if hasattr(v, "to")}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        probs = outputs.logits[0].float().sigmoid().cpu().numpy()  # (queries, text positions)
        boxes = outputs.pred_boxes[0].float().cpu().numpy()  # (queries, 4) normalised cx, cy, w, h
        per_class = np.stack([probs[:, span].max(axis=1) if span else np.zeros(len(probs)) for span in spans], 1)
        best, scores = per_class.argmax(axis=1), per_class.max(axis=1)
        detections = []
        for query in np.argsort(-scores, kind="stable")[: self.max_detections]:
            if scores[query] < self.score_threshold:
                break
            cx, cy, w, h = boxes[query] * [width, height, width, height]
            x0, y0 = max(0.0, cx - w / 2), max(0.0, cy - h / 2)
            x1, y1 = min(float(width), cx + w / 2), min(float(height), cy + h / 2)
            if x1 > x0 and y1 > y0:
                detections.append(Detection(class_names[int(best[query])], (float(x0), float(y0), float(x1 - x0),
                                                                            float(y1 - y0)), float(scores[query])))
        return detections
