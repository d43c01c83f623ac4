"""What the detector judge costs on this machine: tiny-model plumbing, and real-size architectures.

- tiny: 2-layer 32-wide models at 64² (the size the tests use): build + save, load through the backend by path,
  `detect` on a 128×96 image, and one `DetectorAgreementJudge.judge` call on a 128² compositor sample;
- real size, random weights (no download): OWLv2 base/16 at 960² (`Owlv2Config()` defaults) and Grounding DINO
  with its default Swin-T + BERT-base config, saved and loaded through the backend like a real checkpoint; the
  per-image cost is the weights' size and the input resolution, not their values.

Run: `python -m synthloop.evals.detector_cost [--real] [--repeats 3]`. Measured, not asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Cost:
    """Median wall and process-CPU milliseconds of repeated calls (CPU time is what a busy machine cannot
    inflate; on an idle machine wall ≈ CPU / threads)."""

    def __init__(self, fn, repeats: int) -> None:
        fn()  # warm-up
        wall, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        self.wall_ms, self.cpu_ms = 1000 * float(np.median(wall)), 1000 * float(np.median(cpu))

    def __str__(self) -> str:
        return f"{self.wall_ms:7.1f} ms wall / {self.cpu_ms:7.1f} ms CPU"


def _tiny_owl(directory: Path, variant: str = "owlv2") -> Path:
    from synthloop.evals.random_detectors import byte_level_vocab, save_random_owl

    vocab_size = len(byte_level_vocab())
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {**tower, "vocab_size": vocab_size, "max_position_embeddings": 32, "bos_token_id": vocab_size - 2,
            "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1}
    config = {"text_config": text, "vision_config": {**tower, "image_size": 64, "patch_size": 16},
              "projection_dim": 32}
    return save_random_owl(directory, variant=variant, config=config, image_size=64, max_text_length=32)


def _tiny_grounding_dino(directory: Path) -> Path:
    from transformers import BertConfig, SwinConfig

    from synthloop.evals.random_detectors import GDINO_WORDS, save_random_grounding_dino

    config = {"backbone_config": SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                            image_size=64, out_features=["stage2", "stage3", "stage4"]),
              "text_config": BertConfig(vocab_size=len(GDINO_WORDS), hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64),
              "d_model": 32, "encoder_layers": 1, "decoder_layers": 2, "encoder_attention_heads": 2,
              "decoder_attention_heads": 2, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "num_queries": 10,
              "num_feature_levels": 3, "encoder_n_points": 2, "decoder_n_points": 2, "max_text_len": 32,
              "use_timm_backbone": False}
    return save_random_grounding_dino(directory, config=config, image_size=64)


def tiny(root: Path, repeats: int) -> list[str]:
    """Plumbing cost: the backends' fixed costs around next to no model."""
    from synthloop.evals.defects import clean_items
    from synthloop.tools.critic.detector import DetectorAgreementJudge
    from synthloop.tools.critic.detectors import load_detector

    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    item = clean_items(1, size=128, seed=0)[0]
    lines = []
    for backend, build in (("owlv2", _tiny_owl), ("owlvit", lambda p: _tiny_owl(p, variant="owlvit")),
                           ("grounding_dino", _tiny_grounding_dino)):
        start = time.perf_counter()
        path = build(root / backend)
        built = time.perf_counter() - start
        start = time.perf_counter()
        detector = load_detector(backend, str(path), device="cpu")
        loaded = time.perf_counter() - start
        detect = Cost(lambda d=detector: d.detect(image, ["cup", "plate", "fork"]), repeats)
        judge = DetectorAgreementJudge(detector)
        judged = Cost(lambda j=judge: j.judge(item), repeats)
        lines.append(f"tiny {backend:<15} build+save {built:5.2f} s  load {loaded:4.2f} s  detect {detect}"
                     f"  judge {judged}")
    return lines


def real_size(root: Path, repeats: int) -> list[str]:
    """Per-image cost of real-size architectures with random weights."""
    import torch
    import transformers as tf

    from synthloop.evals.random_detectors import GDINO_WORDS, byte_level_vocab
    from synthloop.tools.critic.detectors import load_detector

    image = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    lines = []
    torch.manual_seed(0)
    start = time.perf_counter()
    owl = tf.Owlv2ForObjectDetection(tf.Owlv2Config(vision_config={"image_size": 960}))  # the released base/16
    tokenizer = tf.CLIPTokenizer(vocab=byte_level_vocab(), merges=[], model_max_length=16)
    owl.save_pretrained(root / "owlv2-base")
    tf.Owlv2Processor(image_processor=tf.Owlv2ImageProcessor(), tokenizer=tokenizer).save_pretrained(
        root / "owlv2-base")
    params = sum(p.numel() for p in owl.parameters()) / 1e6
    del owl
    built = time.perf_counter() - start
    start = time.perf_counter()
    detector = load_detector("owlv2", str(root / "owlv2-base"), device="cpu", options={"query_template": "{}"})
    loaded = time.perf_counter() - start
    cost = Cost(lambda: detector.detect(image, ["cup", "plate", "fork"]), repeats)
    lines.append(f"OWLv2 base/16 960² ({params:.0f} M params, random): build+save {built:.1f} s, load {loaded:.1f} s, "
                 f"detect {cost} per image (512² input, 3 classes)")
    del detector
    torch.manual_seed(0)
    start = time.perf_counter()
    gdino = tf.GroundingDinoForObjectDetection(tf.GroundingDinoConfig())
    gdino.save_pretrained(root / "gdino")
    tf.GroundingDinoProcessor(image_processor=tf.GroundingDinoImageProcessor(), tokenizer=tf.BertTokenizer(
        vocab={w: i for i, w in enumerate(GDINO_WORDS)})).save_pretrained(root / "gdino")
    params = sum(p.numel() for p in gdino.parameters()) / 1e6
    del gdino
    built = time.perf_counter() - start
    start = time.perf_counter()
    detector = load_detector("grounding_dino", str(root / "gdino"), device="cpu")
    loaded = time.perf_counter() - start
    cost = Cost(lambda: detector.detect(image, ["cup", "plate", "fork"]), repeats)
    lines.append(f"Grounding DINO Swin-T ({params:.0f} M params, random): build+save {built:.1f} s, load "
                 f"{loaded:.1f} s, detect {cost} per image (512² input → 800 short side, 3 classes)")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Print the tiny-model costs, and the real-size ones with `--real`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="also build real-size architectures (minutes)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    start = time.perf_counter()
    import transformers  # noqa: F401

    print(f"import transformers: {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for line in tiny(Path(tmp), args.repeats):
            print(line)
        if args.real:
            for line in real_size(Path(tmp), max(1, min(args.repeats, 3))):
                print(line)


if __name__ == "__main__":
    main()
