"""SAM through the original `segment-anything` package, for `.pth` checkpoints (`sam_vit_h_4b8939.pth` …).

`sam_model_registry[model_type](checkpoint=PATH)` builds the architecture and loads the weights; the steps are
`SamPredictor`'s (resize the longest side, normalise and pad, encode once; boxes through the same transform,
prompt encoder + mask decoder for all boxes at once; masks upscaled through the padded frame), written without
its per-image state so one predictor can serve any image. segment-anything imports torchvision without
declaring it: both come with `synthloop[models]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tools.annotate.sam import UPSCALE_CHUNK, SamError, best_candidates
from synthloop.tools.critic.detectors._hf import resolve_device, resolve_dtype


@dataclass(frozen=True)
class SegmentAnythingEmbedding:
    """Encoder features with the sizes needed to map boxes in and masks out."""

    features: Any  # (1, C, h, w)
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class SegmentAnythingPredictor:
    """`MaskPredictor` over a segment-anything `Sam` model."""

    def __init__(self, checkpoint: str, *, model_type: str = "vit_h", device: str = "auto",
                 dtype: str = "float32") -> None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise SamError(f"SAM checkpoint does not exist or is not a file: {path}")
        try:
            import torch
            from segment_anything import sam_model_registry
            from segment_anything.utils.transforms import ResizeLongestSide
        except ImportError as exc:
            raise SamError(f"a .pth SAM checkpoint needs segment-anything, torch and torchvision ({exc.name} is "
                           "missing): install synthloop[models]") from exc
        if model_type not in ("vit_b", "vit_l", "vit_h"):
            raise SamError(f"unknown SAM model_type '{model_type}' (vit_b | vit_l | vit_h)")
        self._torch = torch
        self.device = resolve_device(torch, device, kind="SAM", error=SamError)
        self.dtype = resolve_dtype(torch, dtype, self.device, kind="SAM", error=SamError)
        try:
            sam = sam_model_registry[model_type](checkpoint=str(path))
        except (RuntimeError, OSError, EOFError, ValueError) as exc:  # wrong architecture, truncated file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SamError(f"cannot load SAM checkpoint {path} as {model_type}: {first}") from exc
        self.sam = sam.to(self.device, self.dtype).eval()
        self.transform = ResizeLongestSide(self.sam.image_encoder.img_size)
        self.id = f"sam:{path.name}"

    def embed(self, image: np.ndarray) -> SegmentAnythingEmbedding:
        """Run the image encoder once."""
        torch = self._torch
        resized = self.transform.apply_image(image)
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)[None].float()
        with torch.inference_mode():
            features = self.sam.image_encoder(self.sam.preprocess(pixels).to(self.dtype))
        return SegmentAnythingEmbedding(features, (int(image.shape[0]), int(image.shape[1])),
                                        (int(resized.shape[0]), int(resized.shape[1])))

    def predict(self, embedding: SegmentAnythingEmbedding, boxes: np.ndarray, *,
                multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        """All boxes in one prompt call; best candidate per box, upscaled to the image."""
        torch = self._torch
        prompts = self.transform.apply_boxes(boxes, embedding.original_size)
        prompts = torch.as_tensor(prompts, dtype=self.dtype, device=self.device)
        with torch.inference_mode():
            sparse, dense = self.sam.prompt_encoder(points=None, boxes=prompts, masks=None)
            logits, scores = self.sam.mask_decoder(
                image_embeddings=embedding.features, image_pe=self.sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
            chosen, best = best_candidates(torch, logits, scores)
            masks = [(self.sam.postprocess_masks(chosen[i:i + UPSCALE_CHUNK], embedding.input_size,
                                                 embedding.original_size) > self.sam.mask_threshold)[:, 0]
                     .cpu().numpy() for i in range(0, len(boxes), UPSCALE_CHUNK)]
        return np.concatenate(masks), best
