"""SAM through transformers (`SamModel` + `SamProcessor`): the SAM annotator's primary model path.

Loads from a folder written by `save_pretrained` or a hub id already in the local cache
(`facebook/sam-vit-base`, `facebook/sam-vit-large`, `facebook/sam-vit-huge`). The image processor resizes the
longest side to the encoder's input (1024 for released models), normalises and pads; boxes are scaled the same
way; low-resolution mask logits are upscaled back through the padded frame to the image, as
`SamProcessor.post_process_masks` does, but only for each box's best candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthloop.tools.annotate.sam import UPSCALE_CHUNK, SamError, best_candidates
from synthloop.tools.critic.detectors._hf import (
    check_model_location,
    import_torch_transformers,
    load_pretrained,
    resolve_device,
    resolve_dtype,
)


@dataclass(frozen=True)
class SamEmbedding:
    """One image's embedding with the sizes needed to map boxes in and masks out."""

    tensor: Any  # (1, C, h, w)
    original_size: tuple[int, int]  # (H, W) of the image
    reshaped_size: tuple[int, int]  # (H, W) after resizing the longest side, before padding


class TransformersSamPredictor:
    """`MaskPredictor` over a transformers SamModel."""

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "float32") -> None:
        torch, transformers = import_torch_transformers("sam", kind="annotator", error=SamError)
        location = check_model_location(model, kind="SAM", error=SamError)
        self._torch = torch
        self.device = resolve_device(torch, device, kind="SAM", error=SamError)
        self.dtype = resolve_dtype(torch, dtype, self.device, kind="SAM", error=SamError)
        self.processor = load_pretrained(transformers.SamProcessor, location, "sam", error=SamError)
        self.model = load_pretrained(transformers.SamModel, location, "sam", error=SamError)
        self.model = self.model.to(self.device, self.dtype).eval()
        self.id = f"sam:{model}"

    def embed(self, image: np.ndarray) -> SamEmbedding:
        """Run the image encoder once."""
        inputs = self.processor.image_processor(images=[np.array(image)], return_tensors="pt")  # writable copy
        pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
        with self._torch.inference_mode():
            tensor = self.model.get_image_embeddings(pixel_values)
        reshaped = tuple(int(v) for v in inputs["reshaped_input_sizes"][0].tolist())
        return SamEmbedding(tensor, (int(image.shape[0]), int(image.shape[1])), reshaped)

    def predict(self, embedding: SamEmbedding, boxes: np.ndarray, *, multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        """All boxes in one prompt call; best candidate per box, upscaled to the image."""
        torch = self._torch
        (height, width), (new_h, new_w) = embedding.original_size, embedding.reshaped_size
        scale = np.array([new_w / width, new_h / height, new_w / width, new_h / height])
        prompts = torch.as_tensor(boxes * scale, dtype=self.dtype, device=self.device)[None]  # (1, n, 4)
        with torch.inference_mode():
            outputs = self.model(image_embeddings=embedding.tensor, input_boxes=prompts, multimask_output=multimask)
            logits, scores = best_candidates(torch, outputs.pred_masks[0], outputs.iou_scores[0])
            masks = [self._upscale(logits[i:i + UPSCALE_CHUNK], embedding)
                     for i in range(0, len(boxes), UPSCALE_CHUNK)]
        return np.concatenate(masks), scores

    def _upscale(self, logits: Any, embedding: SamEmbedding) -> np.ndarray:
        """(m, 1, h, w) logits → (m, H, W) bool masks through the padded input frame."""
        processor = self.processor.image_processor
        upscaled = processor.post_process_masks([logits], [list(embedding.original_size)],
                                                [list(embedding.reshaped_size)], binarize=True)[0]
        return upscaled[:, 0].cpu().numpy().astype(bool)
