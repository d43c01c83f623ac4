"""SAM 2 with box prompts from the layout: the SAM annotator's steps (`sam.py`) over the `sam2` package.

Optional: needs the `sam2` package (Meta's facebookresearch/sam2, installed from its repository; PyPI's `sam2`
is a repackaging of the same code). Not a dependency of synthloop: `synthloop backends` lists `sam2` as not
installed until it is there. Models (`model`):
- a hub id `SAM2ImagePredictor.from_pretrained` knows (`facebook/sam2.1-hiera-large` …), already in the local
  Hugging Face cache (nothing is downloaded at run time: set HF_HUB_OFFLINE=1);
- or a `.pt` checkpoint with `config`, the sam2 config it was trained with (`configs/sam2.1/sam2.1_hiera_l.yaml`),
  built by `sam2.build_sam.build_sam2`.
Per image: `set_image` (one embedding), then one `predict` with all boxes (`box` N×4, batched by the mask
decoder), and per box the candidate with the highest predicted IoU. The predictor holds one image at a time,
so embeddings are used in order; the annotator always predicts right after embedding the same image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from synthloop.tools.annotate.detector import make_verifier
from synthloop.tools.annotate.sam import CHECKPOINT_SUFFIXES, BoxPromptedAnnotator, BoxPromptOptions, SamError
from synthloop.tools.annotate.vlm_check import VLMEndpoint
from synthloop.tools.backend import BackendBlock
from synthloop.tools.critic.detectors._hf import resolve_device


class Sam2Options(BoxPromptOptions):
    """Options of the SAM 2 annotator."""

    model: str = Field(min_length=1, description="Hub id in the local cache (facebook/sam2.1-hiera-large), or a "
                                                 ".pt checkpoint file (then give config).")
    config: str | None = Field(default=None, description="sam2 config of a .pt checkpoint, e.g. "
                                                         "configs/sam2.1/sam2.1_hiera_l.yaml.")
    device: str = Field(default="auto", description="auto (cuda when available, else cpu) | cpu | cuda[:N]")


class Sam2Predictor:
    """`MaskPredictor` over `sam2.sam2_image_predictor.SAM2ImagePredictor`."""

    def __init__(self, model: str, *, config: str | None = None, device: str = "auto") -> None:
        try:
            import torch
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as exc:
            raise SamError(f"annotator backend 'sam2' needs the sam2 package ({exc.name} is missing): install "
                           "SAM 2 from facebookresearch/sam2") from exc
        self.device = resolve_device(torch, device, kind="SAM 2", error=SamError)
        path = Path(model).expanduser()
        try:
            if path.suffix in CHECKPOINT_SUFFIXES:
                if not path.is_file():
                    raise SamError(f"SAM 2 checkpoint does not exist or is not a file: {path}")
                if not config:
                    raise SamError(f"SAM 2 checkpoint {path.name} needs 'config' (the sam2 config it was trained "
                                   "with, e.g. configs/sam2.1/sam2.1_hiera_l.yaml)")
                self.predictor = SAM2ImagePredictor(build_sam2(config, str(path), device=self.device))
            else:
                self.predictor = SAM2ImagePredictor.from_pretrained(model, device=self.device)
        except SamError:
            raise
        except Exception as exc:  # hydra, hub and state-dict errors have no common base class
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SamError(f"cannot load SAM 2 model '{model}': {first}") from exc
        self._current: object | None = None
        self.id = f"sam2:{path.name if path.suffix in CHECKPOINT_SUFFIXES else model}"

    def embed(self, image: np.ndarray) -> object:
        """Set the image (its embedding stays inside the predictor); returns a token naming it."""
        self.predictor.set_image(image)
        self._current = object()
        return self._current

    def predict(self, embedding: object, boxes: np.ndarray, *, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        """All boxes in one `predict` call; best candidate per box."""
        if embedding is not self._current:
            raise SamError("SAM 2 holds one image at a time: predict right after embedding that image")
        masks, scores, _ = self.predictor.predict(box=np.asarray(boxes, dtype=np.float32),
                                                  multimask_output=multimask)
        n = len(boxes)
        masks = np.asarray(masks).reshape(n, -1, *np.asarray(masks).shape[-2:])  # predict squeezes a single box
        scores = np.asarray(scores, dtype=np.float64).reshape(n, -1)
        best = scores.argmax(axis=1)
        rows = np.arange(n)
        return masks[rows, best] > 0.5, scores[rows, best]


class Sam2Annotator(BoxPromptedAnnotator):
    """Masks from SAM 2 prompted with the layout boxes (optionally detector-refined), certified."""

    id = "sam2"
    source = "sam2"
    Options = Sam2Options
    requires = ("torch", "sam2")

    def __init__(self, model: str, *, config: str | None = None, device: str = "auto",
                 min_predicted_iou: float = 0.5, multimask: bool = True, box_margin: float | None = 0.1,
                 detector: BackendBlock | dict[str, Any] | None = None, detector_iou: float = 0.5,
                 detector_min_score: float = 0.3, vlm: VLMEndpoint | dict[str, Any] | None = None) -> None:
        verifier = None if detector is None else make_verifier(detector, iou=detector_iou,
                                                               min_score=detector_min_score)
        super().__init__(Sam2Predictor(model, config=config, device=device), min_predicted_iou=min_predicted_iou,
                         multimask=multimask, box_margin=box_margin, verifier=verifier,
                         vlm=VLMEndpoint.model_validate(vlm) if vlm is not None else None)
