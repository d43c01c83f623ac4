"""Tiny randomly initialised SAM models, saved like real checkpoints (tests and cost evals).

Built from configs with a seed, no download:
- `tiny_sam`: a transformers `SamModel` (16-wide, 2-layer ViT on 32² inputs, 4 px patches) with its
  `SamProcessor`, written by `save_pretrained` — loaded by the SAM annotator exactly like a hub checkpoint;
- `tiny_segment_anything`: the original package's `Sam` from `ImageEncoderViT` / `PromptEncoder` /
  `MaskDecoder` at the same size, its state dict saved as a `.pth` file; `build_tiny_segment_anything` makes
  the matching architecture (segment-anything's own registry only builds the released vit_b/l/h).
Random weights give random masks; the IoU head is re-drawn at unit scale (`spread_iou_head`) so predicted IoUs
spread around 0.5 like a trained model's instead of sitting at 0. These models test plumbing, not quality.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_SIDE = 32  # encoder input side; 4 px patches → an 8×8 embedding, 32² low-resolution masks


def tiny_sam(directory: Path, seed: int = 0, image_size: int = TINY_SIDE) -> Path:
    """A tiny transformers SamModel + SamProcessor saved in `directory` (returned)."""
    import torch
    import transformers as tf

    vision = tf.SamVisionConfig(image_size=image_size, patch_size=4, hidden_size=16, output_channels=16,
                                num_hidden_layers=2, num_attention_heads=2, window_size=4, global_attn_indexes=[1],
                                num_pos_feats=8, mlp_dim=32, initializer_range=0.02)
    prompt = tf.SamPromptEncoderConfig(image_size=image_size, patch_size=4, hidden_size=16, mask_input_channels=4)
    decoder = tf.SamMaskDecoderConfig(hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                      iou_head_hidden_dim=16)
    torch.manual_seed(seed)
    model = tf.SamModel(tf.SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder))
    spread_iou_head(model.mask_decoder.iou_prediction_head, model.mask_decoder.iou_prediction_head.proj_out)
    processor = tf.SamProcessor(image_processor=tf.SamImageProcessor(
        size={"longest_edge": image_size}, pad_size={"height": image_size, "width": image_size}))
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny_segment_anything(checkpoint: str | None = None, image_size: int = TINY_SIDE) -> Any:
    """The tiny segment-anything `Sam` architecture, with the weights of `checkpoint` when given (the same
    signature as `segment_anything.sam_model_registry[...]`)."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    embedding = image_size // 4
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=image_size, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                                      mlp_ratio=2.0, out_chans=16, qkv_bias=True, use_rel_pos=True,
                                      window_size=4, global_attn_indexes=(1,)),
        prompt_encoder=PromptEncoder(embed_dim=16, image_embedding_size=(embedding, embedding),
                                     input_image_size=(image_size, image_size), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
            depth=2, embedding_dim=16, mlp_dim=32, num_heads=2), transformer_dim=16, iou_head_depth=3,
            iou_head_hidden_dim=16),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()
    if checkpoint is not None:
        with open(checkpoint, "rb") as handle:
            sam.load_state_dict(torch.load(handle))
    return sam


def tiny_segment_anything(path: Path, seed: int = 0) -> Path:
    """A tiny segment-anything state dict saved at `path` (a .pth file, returned)."""
    import torch

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sam = build_tiny_segment_anything()
    spread_iou_head(sam.mask_decoder.iou_prediction_head, sam.mask_decoder.iou_prediction_head.layers[-1])
    torch.save(sam.state_dict(), path)
    return path


def spread_iou_head(head: Any, last: Any) -> None:
    """Re-draw an IoU-prediction MLP: unit-scale hidden layers, a last layer giving outputs ≈ 0.5 ± 0.3."""
    import torch

    with torch.no_grad():
        for layer in head.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.normal_(0.0, layer.in_features ** -0.5)
                layer.bias.zero_()
        last.weight.mul_(0.3)
        last.bias.fill_(0.5)
