"""Open-vocabulary detector checkpoints with random weights, built from configs and saved like real ones.

No download: the model is initialised from a transformers config with a seed and saved with its processor, so
the detector backends load it by path exactly as they load a user's checkpoint (the cost evals measure that
path; the tests build their tiny models with these functions too). OWLv2 / OWL-ViT get a byte-level CLIP BPE
vocabulary (every byte is a token, no merges: CLIP's tokenisation rules with a tiny vocabulary); Grounding DINO
a BERT word vocabulary of a few kitchen classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def save_random_owl(directory: Path, *, variant: str = "owlv2", config: dict[str, Any] | None = None,
                    image_size: int | None = None, max_text_length: int = 16, seed: int = 0) -> Path:
    """An OWLv2 (or OWL-ViT, `variant="owlvit"`) of `config` (keyword arguments of its transformers config;
    None: the released base/16 sizes) with random weights, saved with its processor (images resized to
    `image_size`², None: the processor's default) and a byte-level tokenizer. Returns `directory`."""
    import torch
    import transformers as tf

    if variant not in ("owlv2", "owlvit"):
        raise ValueError(f"variant must be 'owlv2' or 'owlvit', not {variant!r}")
    tokenizer = tf.CLIPTokenizer(vocab=byte_level_vocab(), merges=[], model_max_length=max_text_length)
    size = {"height": image_size, "width": image_size} if image_size else None
    torch.manual_seed(seed)
    if variant == "owlv2":
        model = tf.Owlv2ForObjectDetection(tf.Owlv2Config(**(config or {})))
        images = tf.Owlv2ImageProcessor(**({"size": size} if size else {}))
        processor = tf.Owlv2Processor(image_processor=images, tokenizer=tokenizer)
    else:
        model = tf.OwlViTForObjectDetection(tf.OwlViTConfig(**(config or {})))
        images = tf.OwlViTImageProcessor(**({"size": size, "crop_size": size} if size else {}))
        processor = tf.OwlViTProcessor(image_processor=images, tokenizer=tokenizer)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def save_random_grounding_dino(directory: Path, *, config: dict[str, Any] | None = None,
                               image_size: int | None = None, seed: int = 0) -> Path:
    """A Grounding DINO of `config` (keyword arguments of `GroundingDinoConfig`; None: Swin-T + BERT-base) with
    random weights, saved with its processor (shortest edge `image_size`, None: the default) and a BERT
    tokenizer over `GDINO_WORDS`. Returns `directory`."""
    import torch
    import transformers as tf

    tokenizer = tf.BertTokenizer(vocab={w: i for i, w in enumerate(GDINO_WORDS)}, model_max_length=32)
    size = {"shortest_edge": image_size, "longest_edge": image_size * 2} if image_size else None
    torch.manual_seed(seed)
    model = tf.GroundingDinoForObjectDetection(tf.GroundingDinoConfig(**(config or {})))
    processor = tf.GroundingDinoProcessor(
        image_processor=tf.GroundingDinoImageProcessor(**({"size": size} if size else {})), tokenizer=tokenizer)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
