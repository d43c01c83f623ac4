"""Difficulty for the copy_paste renderer: what easy / medium / hard change in a scene, and a measured score.

The spec's difficulty sets scene properties (distractors, blur, lighting, object fill of its box, chance of
being pushed across the border, how sharp the background is); the score measures what came out, per object
and per image, in [0, 1]: small objects, occlusion, truncation, blur, low contrast with the surroundings and
clutter all raise it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthloop.tools.types import Difficulty

WEIGHTS = {"scale": 0.3, "occlusion": 0.2, "truncation": 0.1, "contrast": 0.2, "blur": 0.1, "clutter": 0.1}


@dataclass(frozen=True)
class SceneDifficulty:
    """Scene properties a difficulty level sets."""

    distractors: tuple[int, int]
    blur_probability: float
    blur_sigma: tuple[float, float]
    noise_sigma: tuple[float, float]
    light: tuple[float, float]  # global brightness factor
    fill: tuple[float, float]  # how much of its box an object fills (longer fitting side)
    truncation_probability: float  # chance that an object at the border is pushed partly outside
    defocus: float  # scales the renderer's background blur: sharp, busy backgrounds are harder


PROFILES: dict[Difficulty, SceneDifficulty] = {
    Difficulty.easy: SceneDifficulty((0, 1), 0.0, (0.0, 0.0), (0.0, 1.5), (0.95, 1.1), (0.92, 1.0), 0.0, 1.25),
    Difficulty.medium: SceneDifficulty((1, 3), 0.2, (0.5, 1.0), (0.0, 3.0), (0.8, 1.1), (0.85, 1.0), 0.15, 1.0),
    Difficulty.hard: SceneDifficulty((3, 7), 0.5, (0.8, 1.6), (2.0, 5.0), (0.6, 1.05), (0.7, 0.95), 0.35, 0.4),
}


def object_difficulty(image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], visible: int,
                      amodal: int, outside: int, blur_sigma: float, clutter: int) -> dict[str, float]:
    """Per-object difficulty terms and their weighted score (all in [0, 1])."""
    height, width = mask.shape
    scale = 1.0 - min(1.0, float(np.sqrt(max(visible, 0))) / (0.35 * float(np.sqrt(width * height))))
    hidden = 1.0 - visible / amodal if amodal else 1.0
    truncation = outside / amodal if amodal else 0.0
    occlusion = max(0.0, hidden - truncation)
    contrast = 1.0
    if visible:
        x0, y0, x1, y1 = box
        x0, y0, x1, y1 = max(0, x0 - 4), max(0, y0 - 4), min(width, x1 + 4), min(height, y1 + 4)
        window, inside = image[y0:y1, x0:x1].astype(np.float32), mask[y0:y1, x0:x1]
        if inside.any() and (~inside).any():
            distance = float(np.linalg.norm(window[inside].mean(axis=0) - window[~inside].mean(axis=0)))
            contrast = 1.0 - min(1.0, distance / 90.0)
    terms = {"scale": scale, "occlusion": occlusion, "truncation": truncation, "contrast": contrast,
             "blur": min(1.0, blur_sigma / 2.0), "clutter": min(1.0, clutter / 15.0)}
    terms["score"] = float(np.clip(sum(WEIGHTS[k] * v for k, v in terms.items()), 0.0, 1.0))
    return {k: round(float(v), 4) for k, v in terms.items()}


def image_difficulty(objects: list[dict[str, float]], blur_sigma: float, clutter: int) -> float:
    """The image's score: the mean of its objects' scores (blur and clutter alone when it has none)."""
    if not objects:
        return round(0.5 * min(1.0, blur_sigma / 2.0) + 0.5 * min(1.0, clutter / 15.0), 4)
    return round(float(np.mean([o["score"] for o in objects])), 4)
