"""The small detector the utility eval trains: torchvision detection models built from scratch (no pretrained
weights can be downloaded here) or from a local checkpoint, trained and run on the CPU.

Models (`MODELS`):
- `tiny_fcos` (default): torchvision's FCOS (anchor-free, focal loss, GIoU, centre-ness) over a five-stage
  convolutional backbone (16→128 channels, BatchNorm) and a 64-channel FPN on strides 8/16/32, with two-conv
  heads; about 0.5 M parameters, a few milliseconds per 128² image on one core, trainable in a minute;
- `fasterrcnn_mobilenet_v3_large_320_fpn`, `ssdlite320_mobilenet_v3_large`, `retinanet_resnet50_fpn`,
  `fcos_resnet50_fpn`: torchvision's own builders with `weights=None, weights_backbone=None`.
A checkpoint (`--checkpoint FILE`, a state dict saved with `torch.save`, optionally under a `model` key) is
loaded into the built model; tensors whose shapes differ (a class head for another number of classes) are
left at their initialisation, and how many were loaded is reported.

Training (`train_detector`): AdamW with a one-cycle learning rate, horizontal flips, seeded (torch, numpy and
the batch order), `torch.set_num_threads` as given. Images are uint8 RGB arrays; boxes are pixel xywh.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.evals.utility.assets import UtilityError

MODELS = ("tiny_fcos", "fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large",
          "retinanet_resnet50_fpn", "fcos_resnet50_fpn")


@dataclass(frozen=True)
class DetectionImage:
    """One image of a detection dataset: pixels, boxes (pixel xywh) and contiguous labels (1..K)."""

    image_id: int
    pixels: np.ndarray
    boxes: np.ndarray  # (N, 4) float32 xywh
    labels: np.ndarray  # (N,) int64 in 1..K


@dataclass(frozen=True)
class TrainSettings:
    """How long and how hard to train."""

    epochs: int = 12
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    threads: int = 1
    flip: bool = True


def _tiny_backbone(torch: Any, nn: Any) -> Any:
    """Five conv stages (strides 2..32) and an FPN on strides 8/16/32 with 64 channels."""
    from collections import OrderedDict

    from torchvision.ops import FeaturePyramidNetwork

    def block(c_in: int, c_out: int) -> Any:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                             nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU(inplace=True))

    class TinyBackbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 24, 4, 4, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True))
            self.stage8, self.stage16, self.stage32 = block(24, 48), block(48, 64), block(64, 96)
            self.fpn = FeaturePyramidNetwork([48, 64, 96], 32)
            self.out_channels = 32

        def forward(self, x: Any) -> Any:
            c8 = self.stage8(self.stem(x))
            c16 = self.stage16(c8)
            c32 = self.stage32(c16)
            return self.fpn(OrderedDict([("p3", c8), ("p4", c16), ("p5", c32)]))

    return TinyBackbone()


def build_model(name: str, num_classes: int, image_size: int) -> Any:
    """A detection model with `num_classes` object classes (background added), random weights."""
    try:
        import torch
        from torch import nn
        from torchvision.models import detection
    except ImportError as exc:
        raise UtilityError("the utility eval trains a torchvision detector: install synthloop[models]") from exc

    if name not in MODELS:
        raise UtilityError(f"unknown detector model '{name}' (known: {', '.join(MODELS)})")
    torch_classes = num_classes + 1
    size = {"min_size": image_size, "max_size": image_size}
    if name == "tiny_fcos":
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.fcos import FCOS, FCOSHead

        anchors = AnchorGenerator(sizes=((8,), (16,), (32,)), aspect_ratios=((1.0,),) * 3)
        return FCOS(_tiny_backbone(torch, nn), torch_classes, anchor_generator=anchors,
                    head=FCOSHead(32, 1, torch_classes, num_convs=2), score_thresh=0.05, detections_per_img=100,
                    **size)
    builder = getattr(detection, name)
    return builder(weights=None, weights_backbone=None, num_classes=torch_classes, **size)


def load_checkpoint(model: Any, path: Path) -> tuple[int, int]:
    """Load a local state dict into `model` where names and shapes fit; (tensors loaded, tensors in model)."""
    import torch

    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise UtilityError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise UtilityError(f"checkpoint {path} holds no state dict")
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not fitting:
        raise UtilityError(f"checkpoint {path} has no tensor that fits this model (wrong architecture?)")
    model.load_state_dict(fitting, strict=False)
    return len(fitting), len(own)


def _targets(torch: Any, batch: Sequence[DetectionImage], flips: Sequence[bool]) -> tuple[list[Any], list[Any]]:
    images, targets = [], []
    for item, flip in zip(batch, flips, strict=True):
        pixels = item.pixels[:, ::-1] if flip else item.pixels
        images.append(torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1).div_(255.0))
        boxes = item.boxes.astype(np.float32).reshape(-1, 4).copy()
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        if flip:
            width = item.pixels.shape[1]
            xyxy[:, [0, 2]] = width - xyxy[:, [2, 0]]
        targets.append({"boxes": torch.from_numpy(xyxy).reshape(-1, 4),
                        "labels": torch.from_numpy(item.labels.astype(np.int64))})
    return images, targets


def train_detector(model: Any, data: Sequence[DetectionImage], settings: TrainSettings, seed: int) -> list[float]:
    """Train in place; the mean loss per epoch."""
    import torch

    if not data:
        raise UtilityError("no training images")
    torch.manual_seed(seed)
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(seed)
    usable = [d for d in data if len(d.labels)] or list(data)
    steps_per_epoch = max(1, -(-len(usable) // settings.batch_size))
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.learning_rate,
                                                   total_steps=settings.epochs * steps_per_epoch, pct_start=0.15)
    model.train()
    losses = []
    for _ in range(settings.epochs):
        order = rng.permutation(len(usable))
        total = 0.0
        for step in range(steps_per_epoch):
            batch = [usable[int(i)] for i in order[step * settings.batch_size:(step + 1) * settings.batch_size]]
            flips = [bool(settings.flip and rng.random() < 0.5) for _ in batch]
            images, targets = _targets(torch, batch, flips)
            loss = sum(model(images, targets).values())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        losses.append(total / steps_per_epoch)
    return losses


def predict(model: Any, data: Sequence[DetectionImage], *, batch_size: int = 32, threads: int = 1
            ) -> list[dict[str, Any]]:
    """COCO result rows (image_id, contiguous label, xywh box, score) for every image."""
    import torch

    torch.set_num_threads(threads)
    model.eval()
    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            batch = list(data[start:start + batch_size])
            images, _ = _targets(torch, batch, [False] * len(batch))
            for item, out in zip(batch, model(images), strict=True):
                for box, label, score in zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist(),
                                             strict=True):
                    x0, y0, x1, y1 = box
                    rows.append({"image_id": item.image_id, "label": int(label),
                                 "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
    return rows


class TrainedDetector:
    """A detector trained here, behind the critic's `Detector` protocol (closed vocabulary: its classes), so the
    recognisability judge can use it. With several models and `fold_of` (pixel SHA-256 → the fold an image
    belongs to), each image is seen by the model that was not trained on it (cross-fitting)."""

    def __init__(self, models: Sequence[Any], classes: Sequence[str], *, fold_of: dict[str, int] | None = None,
                 threads: int = 1) -> None:
        self.models = list(models)
        self.classes = list(classes)
        self.fold_of = fold_of or {}
        self.threads = threads
        self.vocabulary = frozenset(self.classes)
        self.id = f"utility-crossfit:{len(self.models)}"

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Any]:
        """Detections of `class_names` by the model that did not see `image` in training."""
        from synthloop.tools.critic.detector import Detection
        from synthloop.tools.critic.duplicates import pixel_sha256

        fold = self.fold_of.get(pixel_sha256(image), 0) if len(self.models) > 1 else 0
        model = self.models[(fold + 1) % len(self.models)]
        item = DetectionImage(image_id=0, pixels=image, boxes=np.zeros((0, 4), np.float32),
                              labels=np.zeros(0, np.int64))
        rows = predict(model, [item], batch_size=1, threads=self.threads)
        wanted = set(class_names)
        return [Detection(self.classes[r["label"] - 1], tuple(r["bbox"]), r["score"]) for r in rows
                if 0 < r["label"] <= len(self.classes) and self.classes[r["label"] - 1] in wanted]


def cross_fitted_detector(data: Sequence[DetectionImage], classes: Sequence[str], settings: TrainSettings,
                          image_size: int, seed: int, model_name: str = "tiny_fcos") -> TrainedDetector:
    """Two models, each trained on every other image of `data`; an image is judged by the model of the other
    half (nothing is judged by a model that learnt its labels)."""
    import torch

    from synthloop.tools.critic.duplicates import pixel_sha256

    halves = [list(data[0::2]), list(data[1::2])]
    models = []
    for half, part in enumerate(halves):
        torch.manual_seed(seed + half)
        model = build_model(model_name, len(classes), image_size)
        train_detector(model, part, settings, seed=seed + half)
        models.append(model)
    fold_of = {pixel_sha256(item.pixels): half for half, part in enumerate(halves) for item in part}
    return TrainedDetector(models, classes, fold_of=fold_of, threads=settings.threads)
