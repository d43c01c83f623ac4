"""Output checks on a pipeline's float images before they become pixels.

A diffusion output can be unusable without any exception: NaN or infinite values (float16 overflow, an
unstable VAE), an all-black image (what a NaN decodes to after clamping on some paths), an image the model's
safety checker blanked, or a flat single-colour image. Such outputs are re-rendered with a new derived seed
(`batching.py`); what each check found is recorded in the sample's render info.
"""

from __future__ import annotations

import numpy as np

BLACK_MAX = 2.0 / 255.0  # brightest pixel of an image that counts as black
FLAT_STD = 0.5 / 255.0  # below this standard deviation an image is one flat colour


def output_defect(image: np.ndarray, flagged: bool = False) -> str | None:
    """Why a float (H, W, 3) output in [0, 1] is unusable ("nan", "safety", "black", "flat"), or None."""
    if not np.isfinite(image).all():
        return "nan"
    if flagged:
        return "safety"
    if float(image.max()) <= BLACK_MAX:
        return "black"
    if float(image.std()) < FLAT_STD:
        return "flat"
    return None


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint8 with rounding (diffusers' own conversion), NaN read as 0."""
    return (np.nan_to_num(np.clip(image, 0.0, 1.0), nan=0.0) * 255.0).round().astype(np.uint8)
