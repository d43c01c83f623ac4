"""Detector backends, one per file, registered in `registry.py` (`DETECTORS`); `load_detector` builds one.

- `owlv2` / `owlvit`    open-vocabulary OWLv2 / OWL-ViT through transformers (`owlv2.py`)
- `grounding_dino`      open-vocabulary Grounding DINO through transformers (`grounding_dino.py`)
- `yolov3_darknet`      closed-vocabulary Darknet YOLO (e.g. YOLOv3-tiny COCO) through OpenCV (`darknet.py`)

Every backend loads from a local path (or, for transformers, a hub id already in the local cache) and raises
`DetectorError` with a one-line message when the files or the packages are missing.
"""

from __future__ import annotations

from typing import Any

from synthloop.tools.critic.detector import Detector
from synthloop.tools.critic.detectors.registry import DETECTORS, build_detector, detector_block

BACKENDS = ("owlv2", "owlvit", "grounding_dino", "yolov3_darknet")  # the built-ins; DETECTORS.names() has all


def load_detector(backend: str, model: str, *, device: str = "auto", dtype: str = "float32",
                  options: dict[str, Any] | None = None) -> Detector:
    """The detector `backend` loaded from `model` (a local path or hub id); `options` go to the backend.

    A thin wrapper over the registry, kept for the detector judge's flat config (`DetectorConfig`)."""
    return build_detector(detector_block(backend, model, device=device, dtype=dtype, options=options))


__all__ = ["BACKENDS", "DETECTORS", "build_detector", "detector_block", "load_detector"]
