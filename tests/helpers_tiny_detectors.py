"""The tests' tiny open-vocabulary detectors: random weights, saved like real checkpoints (no download).

OWLv2 / OWL-ViT with 2-layer 32-wide towers and 16 px patches; Grounding DINO with an 8-wide Swin, a one-layer
32-wide BERT, d_model 32 and 10 queries. Built by `synthloop.evals.random_detectors` (which also builds the
real-size ones the cost eval measures); each builder returns the directory.
"""

from __future__ import annotations

from pathlib import Path

from synthloop.evals.random_detectors import (
    GDINO_WORDS,
    byte_level_vocab,
    save_random_grounding_dino,
    save_random_owl,
)

TEXT_LENGTH = 32


def tiny_owl(directory: Path, variant: str = "owlv2", image_size: int = 64, seed: int = 0) -> Path:
    """A 2-layer OWLv2 (or OWL-ViT) with 32-wide towers and 16 px patches, saved with its processor."""
    vocab_size = len(byte_level_vocab())
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {**tower, "vocab_size": vocab_size, "max_position_embeddings": TEXT_LENGTH,
            "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1}
    config = {"text_config": text, "vision_config": {**tower, "image_size": image_size, "patch_size": 16},
              "projection_dim": 32}
    return save_random_owl(directory, variant=variant, config=config, image_size=image_size,
                           max_text_length=TEXT_LENGTH, seed=seed)


def tiny_grounding_dino(directory: Path, image_size: int = 64, seed: int = 0) -> Path:
    """A Grounding DINO with an 8-wide Swin, a one-layer 32-wide BERT, d_model 32 and 10 queries."""
    from transformers import BertConfig, SwinConfig

    config = {
        "backbone_config": SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                      image_size=image_size, out_features=["stage2", "stage3", "stage4"]),
        "text_config": BertConfig(vocab_size=len(GDINO_WORDS), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=37, max_position_embeddings=64),
        "d_model": 32, "encoder_layers": 1, "decoder_layers": 2, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "num_queries": 10,
        "num_feature_levels": 3, "encoder_n_points": 2, "decoder_n_points": 2, "max_text_len": 32,
        "use_timm_backbone": False,
    }
    return save_random_grounding_dino(directory, config=config, image_size=image_size, seed=seed)
