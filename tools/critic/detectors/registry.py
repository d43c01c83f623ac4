"""Detector backends by name (the detector judge's `detector:` config, and the annotators' `detector:` blocks);
other packages add theirs under the `synthloop.detectors` entry point group.

A detector block reads like any backend block: `{backend: owlv2, model: /models/owlv2, score_threshold: 0.1}`.
"""

from __future__ import annotations

from typing import Any

from synthloop.tools.backend import BackendBlock, BackendError, Registry, options_model
from synthloop.tools.critic.detector import Detector, DetectorError

_PACKAGE = "synthloop.tools.critic.detectors"
DETECTORS: Registry[Detector] = Registry("detector", "synthloop.detectors", {
    "owlv2": f"{_PACKAGE}.owlv2:OwlDetector",
    "owlvit": f"{_PACKAGE}.owlv2:OwlVitDetector",
    "grounding_dino": f"{_PACKAGE}.grounding_dino:GroundingDinoDetector",
    "yolov3_darknet": f"{_PACKAGE}.darknet:DarknetDetector",
})


def detector_block(backend: str, model: str, *, device: str = "auto", dtype: str = "float32",
                   options: dict[str, Any] | None = None) -> BackendBlock:
    """The registry block of the detector judge's flat settings. `device` and `dtype` go only to backends that
    take them (a Darknet detector runs on OpenCV's CPU path whatever they say, as it always did)."""
    fields = options_model(_resolve(backend)).model_fields
    values: dict[str, Any] = {"model": model}
    values.update({name: value for name, value in (("device", device), ("dtype", dtype)) if name in fields})
    values.update(options or {})
    return BackendBlock.model_validate({**values, "backend": backend})


def build_detector(block: BackendBlock | dict[str, Any] | str) -> Detector:
    """The detector of a block, loaded now; any problem is one `DetectorError` line."""
    try:
        return DETECTORS.build(block)
    except BackendError as exc:
        raise DetectorError(str(exc)) from exc


def check_detector(block: BackendBlock | dict[str, Any] | str) -> BackendBlock:
    """Validate a detector block's name and options without loading a model (config time)."""
    try:
        return DETECTORS.check(block)
    except BackendError as exc:
        raise DetectorError(str(exc)) from exc


def _resolve(backend: str) -> type:
    try:
        return DETECTORS.resolve(backend)
    except BackendError as exc:
        raise DetectorError(str(exc)) from exc
