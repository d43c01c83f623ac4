"""Output checks on a pipeline's images before they become pixels.

A diffusion output can be unusable without any exception: NaN or infinite values (float16 overflow, an
unstable VAE), an all-black image (what some NaN paths decode to), an image the model's safety checker
blanked, or a flat single-colour image. Such outputs are re-rendered with a new derived seed
(`batching.py`); what each check found is recorded in the sample's render info.

The pipeline's images stay on its device as a (B, 3, H, W) tensor in [0, 1]: the statistics and the uint8
conversion run there in one pass, and only uint8 pixels cross to the host (a quarter of the float bytes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLACK_MAX = 2.0 / 255.0  # brightest pixel of an image that counts as black
FLAT_STD = 0.5 / 255.0  # below this standard deviation an image is one flat colour


def defect(finite: bool, brightest: float, spread: float, flagged: bool = False) -> str | None:
    """Why an output with these statistics is unusable ("nan", "safety", "black", "flat"), or None."""
    if not finite:
        return "nan"
    if flagged:
        return "safety"
    if brightest <= BLACK_MAX:
        return "black"
    if spread < FLAT_STD:
        return "flat"
    return None


def output_defect(image: np.ndarray, flagged: bool = False) -> str | None:
    """`defect` of one float (H, W, 3) image in [0, 1]."""
    finite = bool(np.isfinite(image).all())
    return defect(finite, float(np.nan_to_num(image).max()), float(np.nan_to_num(image).std()), flagged)


def checked_pixels(images: Any, flags: list[bool]) -> tuple[np.ndarray, list[str | None]]:
    """A (B, 3, H, W) float tensor in [0, 1] → (B, H, W, 3) uint8 array (rounded like diffusers' own
    conversion, NaN read as 0) and each image's defect."""
    import torch

    with torch.inference_mode():
        values = images.float()
        flat = values.flatten(1)
        finite = torch.isfinite(flat).all(dim=1)
        clean = torch.nan_to_num(flat, nan=0.0, posinf=1.0, neginf=0.0)
        stats = torch.stack([finite.float(), clean.amax(dim=1), clean.std(dim=1)], dim=1).cpu().tolist()
        pixels = (torch.nan_to_num(values, nan=0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        array = pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return array, [defect(bool(f), m, s, flag) for (f, m, s), flag in zip(stats, flags, strict=True)]

