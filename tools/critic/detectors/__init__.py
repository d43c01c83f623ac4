"""Detector backends, one per file; `load_detector` builds one by name.

- `owlv2` / `owlvit`    open-vocabulary OWLv2 / OWL-ViT through transformers (`owlv2.py`)
- `grounding_dino`      open-vocabulary Grounding DINO through transformers (`grounding_dino.py`)
- `yolov3_darknet`      closed-vocabulary Darknet YOLO (e.g. YOLOv3-tiny COCO) through OpenCV (`darknet.py`)

Every backend loads from a local path (or, for transformers, a hub id already in the local cache) and raises
`DetectorError` with a one-line message when the files or the packages are missing.
"""

from __future__ import annotations

from typing import Any

from synthloop.tools.critic.detector import Detector, DetectorError

BACKENDS = ("owlv2", "owlvit", "grounding_dino", "yolov3_darknet")


def load_detector(backend: str, model: str, *, device: str = "auto", dtype: str = "float32",
                  options: dict[str, Any] | None = None) -> Detector:
    """The detector `backend` loaded from `model` (a local path or hub id); `options` go to the backend."""
    extra = dict(options or {})
    try:
        return _load(backend, model, device, dtype, extra)
    except TypeError as exc:  # an option the backend does not take
        raise DetectorError(f"bad option for detector backend '{backend}': {exc}") from exc


def _load(backend: str, model: str, device: str, dtype: str, extra: dict[str, Any]) -> Detector:
    if backend in ("owlv2", "owlvit"):
        from synthloop.tools.critic.detectors.owlv2 import OwlDetector

        return OwlDetector(model, variant=backend, device=device, dtype=dtype, **extra)
    if backend == "grounding_dino":
        from synthloop.tools.critic.detectors.grounding_dino import GroundingDinoDetector

        return GroundingDinoDetector(model, device=device, dtype=dtype, **extra)
    if backend == "yolov3_darknet":
        from synthloop.tools.critic.detectors.darknet import DarknetDetector

        return DarknetDetector(model, **extra)
    raise DetectorError(f"unknown detector backend '{backend}' (available: {', '.join(BACKENDS)})")
