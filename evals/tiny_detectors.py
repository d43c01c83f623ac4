"""Tiny randomly initialised open-vocabulary detectors, saved like real checkpoints (tests and cost evals).

Built from configs with a seed, no download: OWLv2 / OWL-ViT with a byte-level CLIP BPE vocabulary (every
byte is a token, no merges: exact CLIP tokenisation rules, tiny vocabulary), Grounding DINO with a Swin
backbone, a one-layer BERT and a word vocabulary written here. Each builder returns the directory.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

GDINO_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "cup", "plate", "fork", "wine", "glass"]


def byte_level_vocab() -> dict[str, int]:
    """CLIP's byte → unicode alphabet, each symbol alone and word-final ('</w>'), plus the special tokens."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols = [chr(b) for b in printable]
    symbols += [chr(256 + n) for n in range(256 - len(printable))]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({f"{s}</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def tiny_owl(directory: Path, variant: str = "owlv2", image_size: int = 64, seed: int = 0) -> Path:
    """A 2-layer OWLv2 (or OWL-ViT) with 32-wide towers, 16 px patches, saved with its processor."""
    import torch
    import transformers as tf

    vocab = byte_level_vocab()
    tokenizer = tf.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=32)
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {**tower, "vocab_size": len(vocab), "max_position_embeddings": 32, "bos_token_id": len(vocab) - 2,
            "eos_token_id": len(vocab) - 1, "pad_token_id": len(vocab) - 1}
    vision = {**tower, "image_size": image_size, "patch_size": 16}
    torch.manual_seed(seed)
    if variant == "owlv2":
        config = tf.Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
        model = tf.Owlv2ForObjectDetection(config)
        processor = tf.Owlv2Processor(image_processor=tf.Owlv2ImageProcessor(
            size={"height": image_size, "width": image_size}), tokenizer=tokenizer)
    else:
        config = tf.OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32)
        model = tf.OwlViTForObjectDetection(config)
        processor = tf.OwlViTProcessor(image_processor=tf.OwlViTImageProcessor(
            size={"height": image_size, "width": image_size}, crop_size={"height": image_size, "width": image_size}),
            tokenizer=tokenizer)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def tiny_grounding_dino(directory: Path, image_size: int = 64, seed: int = 0) -> Path:
    """A Grounding DINO with an 8-wide Swin, a one-layer 32-wide BERT, d_model 32 and 10 queries."""
    import torch
    import transformers as tf

    tokenizer = tf.BertTokenizer(vocab={w: i for i, w in enumerate(GDINO_WORDS)}, model_max_length=32)
    config = tf.GroundingDinoConfig(
        backbone_config=tf.SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                      image_size=image_size, out_features=["stage2", "stage3", "stage4"]),
        text_config=tf.BertConfig(vocab_size=len(GDINO_WORDS), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=37, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10, num_feature_levels=3, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, use_timm_backbone=False,
    )
    torch.manual_seed(seed)
    model = tf.GroundingDinoForObjectDetection(config)
    processor = tf.GroundingDinoProcessor(image_processor=tf.GroundingDinoImageProcessor(
        size={"shortest_edge": image_size, "longest_edge": image_size * 2}), tokenizer=tokenizer)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
