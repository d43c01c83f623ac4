"""Judge test helpers: a scripted detector (no model weights) and the judge input of a blank sample."""

from __future__ import annotations

import numpy as np

from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.detector import Detection
from synthloop.tools.types import Annotation, Instance, Layout, Sample, TaskSpec


class ScriptedDetector:
    """Returns fixed detections (those of the asked classes) and records what it was asked."""

    id = "scripted"

    def __init__(self, detections: list[Detection], vocabulary: frozenset[str] | None = None) -> None:
        self.detections = detections
        self.vocabulary = vocabulary
        self.asked: list[list[str]] = []

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        self.asked.append(list(class_names))
        return [d for d in self.detections if d.category in class_names]


def judge_input(spec: TaskSpec, instances: list[Instance], image: np.ndarray | None = None,
                sample_id: str = "s1") -> JudgeInput:
    """A judge's input: a sample of the spec's size annotated with `instances`, over `image` (black if None)."""
    width, height = spec.width, spec.height
    sample = Sample(id=sample_id, index=0, attempt=0, seed=1, split="train", image_path=f"images/train/{sample_id}.png",
                    width=width, height=height, layout=Layout(width=width, height=height, objects=[], seed=1),
                    annotation=Annotation(instances=instances))
    pixels = np.zeros((height, width, 3), np.uint8) if image is None else image
    return JudgeInput(sample=sample, image=pixels, spec=spec)
