"""What the model annotators cost per image, by stage, at real-size architectures with random weights.

- SAM (`--sam vit_b vit_l vit_h`): a transformers `SamModel` with the released architecture (ViT-B/L/H image
  encoder at 1024², 256-wide prompt encoder and mask decoder), random weights, saved with `save_pretrained` and
  loaded by the SAM annotator exactly like a hub checkpoint; stages: image embedding (once per image), prompt
  decode (one call with all boxes of the image, mask upscaling included), certificate and RLE bookkeeping;
- `--owl`: an OWLv2 base/16 at 960² (`Owlv2Config()` defaults, random weights) as the annotator's detector
  (`sam` + `detector:`), adding the detector stage.
The per-image cost is the weights' size and the input resolution, not their values; random weights make the
masks meaningless, so nothing here measures quality. Images: compositor renders of procedural layouts at
`--size` (3 classes, `--difficulty`), given to the annotator without their instance maps.

Run (CPU, one image, ViT-B): `python -m synthloop.evals.annotator_cost --sam vit_b --images 1`
Run (GPU): `python -m synthloop.evals.annotator_cost --sam vit_b vit_h --owl --images 8 --device cuda
--dtype float16`. Measured, not asserted; CUDA stages are synchronised before each clock read.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAM_ARCHITECTURES = {  # the released checkpoints' vision encoders (facebook/sam-vit-base / -large / -huge)
    "vit_b": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
              "global_attn_indexes": [2, 5, 8, 11]},
    "vit_l": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
              "global_attn_indexes": [5, 11, 17, 23]},
    "vit_h": {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16,
              "global_attn_indexes": [7, 15, 23, 31]},
}


class StageClock:
    """Wraps callables to add their wall and process-CPU time per stage; synchronises CUDA before reading the
    clocks. CPU time is what a busy shared machine cannot inflate (on an idle one wall ≈ CPU / threads)."""

    def __init__(self, torch: Any, device: str) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.cpu_seconds: dict[str, list[float]] = defaultdict(list)
        self._sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` timed under `stage`."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn(*args, **kwargs)
            self._sync()
            self.seconds[stage].append(time.perf_counter() - start)
            self.cpu_seconds[stage].append(time.process_time() - start_cpu)
            return result

        return timed


def save_sam(directory: Path, architecture: str) -> float:
    """A random-weight SamModel of the released architecture saved with its processor; returns M params."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    model = tf.SamModel(tf.SamConfig(vision_config=tf.SamVisionConfig(**SAM_ARCHITECTURES[architecture])))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    model.save_pretrained(directory)
    tf.SamProcessor(image_processor=tf.SamImageProcessor()).save_pretrained(directory)
    return params


def save_owl(directory: Path) -> float:
    """A random-weight OWLv2 base/16 at 960² saved with its processor; returns M params (float32 on disk)."""
    from synthloop.evals.random_detectors import save_random_owl

    save_random_owl(directory, config={"vision_config": {"image_size": 960}})
    return sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 4e6


def requests(n: int, size: int, difficulty: str) -> list[Any]:
    """Compositor renders of procedural layouts, without their instance maps (as a generator would give)."""
    from synthloop.tools.annotate.base import AnnotateRequest
    from synthloop.tools.layout.procedural import ProceduralLayoutSampler
    from synthloop.tools.render.base import RenderResult
    from synthloop.tools.render.compositor import CompositorRenderer
    from synthloop.tools.types import ObjectSpec, TaskSpec

    spec = TaskSpec(objects=[ObjectSpec(name=name, min_count=1, max_count=3) for name in ("cup", "plate", "fork")],
                    width=size, height=size, difficulty=difficulty)
    sampler, renderer = ProceduralLayoutSampler(), CompositorRenderer()
    out = []
    for seed in range(n):
        layout = sampler.sample(spec, seed)
        out.append(AnnotateRequest(layout, RenderResult(image=renderer.render(layout, spec, seed).image), spec))
    return out


def measure(annotator: Any, batch: list[Any], torch: Any, device: str) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU milliseconds per image by stage (after one warm-up image)."""
    clock = StageClock(torch, device)
    predictor = annotator.predictor
    predictor.embed = clock.wrap("embed", predictor.embed)
    predictor.predict = clock.wrap("decode", predictor.predict)
    if annotator.verifier is not None:
        detector = annotator.verifier.detector
        detector.detect = clock.wrap("detector", detector.detect)
    annotate = clock.wrap("total", lambda r: annotator.annotate_batch([r]))
    annotate(batch[0])  # warm-up: first-call allocations, kernel selection
    clock.seconds.clear()
    clock.cpu_seconds.clear()
    for item in batch[1:]:
        annotate(item)
    results = []
    for seconds in (clock.seconds, clock.cpu_seconds):
        result = {stage: 1000 * float(np.median(values)) for stage, values in seconds.items()}
        result["other"] = max(0.0, result["total"] - sum(v for k, v in result.items() if k != "total"))
        results.append(result)
    return results[0], results[1]


def main(argv: list[str] | None = None) -> None:
    """Build, load and time the asked architectures; print one line per configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", nargs="+", choices=sorted(SAM_ARCHITECTURES), default=["vit_b"])
    parser.add_argument("--owl", action="store_true", help="also time SAM with an OWLv2 base detector step")
    parser.add_argument("--images", type=int, default=2, help="timed images (after one warm-up image)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--difficulty", default="medium", choices=["easy", "medium", "hard"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = parser.parse_args(argv)
    import torch

    from synthloop.tools.annotate.registry import ANNOTATORS

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {device} "
          f"({gpu}), dtype {args.dtype}")
    batch = requests(args.images + 1, args.size, args.difficulty)
    boxes = [len(r.layout.objects) for r in batch[1:]]
    print(f"{args.images} timed images {args.size}² ({args.difficulty}), boxes per image {boxes}")
    with tempfile.TemporaryDirectory() as tmp:
        owl = None
        if args.owl:
            start = time.perf_counter()
            params = save_owl(Path(tmp) / "owlv2")
            owl = {"backend": "owlv2", "model": str(Path(tmp) / "owlv2"), "device": device, "dtype": args.dtype,
                   "query_template": "{}"}
            print(f"OWLv2 base/16 960² ({params:.0f} M params): build+save {time.perf_counter() - start:.1f} s")
        for architecture in args.sam:
            directory = Path(tmp) / f"sam-{architecture}"
            start = time.perf_counter()
            params = save_sam(directory, architecture)
            built = time.perf_counter() - start
            for detector in ([None, owl] if owl else [None]):
                block = {"backend": "sam", "model": str(directory), "device": device, "dtype": args.dtype,
                         "min_predicted_iou": 0.0}
                if detector:
                    block.update(detector=detector, detector_min_score=0.0)
                start = time.perf_counter()
                annotator = ANNOTATORS.build(block)
                loaded = time.perf_counter() - start
                wall, cpu = measure(annotator, batch, torch, device)
                name = f"SAM {architecture}" + (" + OWLv2" if detector else "")
                print(f"{name:<16} ({params:.0f} M params) build+save {built:5.1f} s  load {loaded:5.1f} s")
                for label, ms in (("wall", wall), ("CPU", cpu)):
                    stages = "  ".join(f"{k} {v:8.1f}" for k, v in ms.items() if k != "total")
                    print(f"    ms/image {label:<4}: total {ms['total']:8.1f}  {stages}")
                del annotator
            directory_size = sum(f.stat().st_size for f in directory.iterdir()) / 1e9
            print(f"    checkpoint on disk {directory_size:.2f} GB")


if __name__ == "__main__":
    main()
