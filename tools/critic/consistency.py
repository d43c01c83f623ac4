"""Label consistency across a dataset: an object that looks like the objects labelled "car" in other images but is
labelled "dog" is likely relabelled.

Every annotated box of the dataset gets a small appearance descriptor of its crop (no model: the crop at 16 × 16,
standardised; its colour histogram; its gradient-orientation histogram; its aspect ratio; L2-normalised). An
instance is judged by its `k` nearest look-alikes (cosine similarity) among the instances of *other* images, so
that an image whose every box was relabelled cannot vouch for itself. It is flagged when at most `max_agreement`
of them share its label and the label most of them carry is more frequent among them than chance allows: the
binomial tail P(X ≥ count) with that label's share of the dataset is below `alpha` (so a rare class that looks
like a common one is not flagged for having common-class look-alikes).

Only classes the descriptor groups in this dataset are judged: a class whose instances' look-alikes carry its
own label less than half the time (median over its instances, `min_class_agreement`) gives no basis for calling
one of its boxes relabelled, and is left alone (in the critique check's copy-paste data: bird, 0.3–0.4; every
other class 0.8–1.0).

This is the k-nearest-neighbour view of confident learning (a label is suspect when the data around it disagrees).
It needs look-alikes: it speaks where a class's appearances recur across the dataset (copy-paste data reuses its
cut-outs; real photos of one product line), and it stays silent where the index holds fewer than `k` instances
from other images. Measured, the judge alone (k = 10, agreement 0, alpha 0.001, class agreement 0.5): on the
critique check's boxes-only COCO files (`synthloop eval critic-defects --n 200 --critique-check DIR --seed S`:
200 copy-paste images at 512², 8 COCO classes, 20 relabelled images) seed 0: relabels 14/20, untouched images
rejected 0/160; seed 1: 18/20, 2/160 (without the class test: 15/160, nearly all birds); on the utility eval's
pool (240 images at 128², 4 classes): relabels 14/16, clean 0/192.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.types import Decision, Instance, Verdict

CROP_SIDE = 16
MIN_BOX_SIDE = 4.0  # boxes thinner than this have no crop worth describing
CLASS_SAMPLE = 2000  # instances queried to measure how well each class groups (bounds the cost on big files)


def crop_descriptor(image: np.ndarray, bbox: Sequence[float]) -> np.ndarray | None:
    """The appearance descriptor of the xywh `bbox`'s crop (unit length); None for a box under MIN_BOX_SIDE or
    outside the image."""
    from PIL import Image

    x, y, w, h = (float(v) for v in bbox)
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        return None
    height, width = image.shape[:2]
    x0, y0 = max(int(x), 0), max(int(y), 0)
    x1, y1 = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    crop = np.asarray(image[y0:y1, x0:x1, :3], dtype=np.uint8)
    small = np.asarray(Image.fromarray(crop).resize((CROP_SIDE, CROP_SIDE), Image.BILINEAR), np.float32) / 255.0
    colours = np.concatenate([np.histogram(small[..., c], bins=8, range=(0.0, 1.0))[0] for c in range(3)])
    colours = colours.astype(np.float32) / max(float(colours.sum()), 1e-6)
    gy, gx = np.gradient(small.mean(axis=-1))
    orientations = np.histogram(np.arctan2(gy, gx), bins=8, range=(-np.pi, np.pi), weights=np.hypot(gx, gy))[0]
    orientations = orientations.astype(np.float32) / max(float(orientations.sum()), 1e-6)
    flat = small.reshape(-1)
    flat = (flat - flat.mean()) / (flat.std() + 1e-6) / np.sqrt(flat.size)
    descriptor = np.concatenate([flat, 2.0 * colours, 2.0 * orientations, [np.log(w / h) / 3.0]]).astype(np.float32)
    return descriptor / max(float(np.linalg.norm(descriptor)), 1e-6)


class ConsistencyIndex:
    """The descriptors and labels of a dataset's instances, keyed by image, for look-alike queries."""

    def __init__(self) -> None:
        self._descriptors: list[np.ndarray] = []
        self._labels: list[str] = []
        self._images: list[str] = []
        self._matrix: np.ndarray | None = None  # the descriptors and image keys as arrays, built on first query
        self._image_keys: np.ndarray | None = None
        self._agreement: dict[tuple[int, int], dict[str, float]] = {}

    def __len__(self) -> int:
        return len(self._labels)

    def add_image(self, image_key: str, image: np.ndarray, instances: Iterable[Instance]) -> None:
        """Describe every instance of one image."""
        for inst in instances:
            descriptor = crop_descriptor(image, inst.bbox)
            if descriptor is not None:
                self._descriptors.append(descriptor)
                self._labels.append(inst.category)
                self._images.append(image_key)
        self._matrix = self._image_keys = None
        self._agreement = {}

    def label_share(self, label: str) -> float:
        """The share of the indexed instances that carry `label`."""
        return self._labels.count(label) / len(self._labels) if self._labels else 0.0

    def look_alikes(self, image_key: str, descriptor: np.ndarray, k: int) -> list[str]:
        """The labels of the `k` most similar instances of other images (fewer when the index holds fewer)."""
        if not len(self):
            return []
        if self._matrix is None or self._image_keys is None:
            self._matrix, self._image_keys = np.stack(self._descriptors), np.asarray(self._images)
        similarity = self._matrix @ descriptor
        similarity[self._image_keys == image_key] = -np.inf
        usable = int(np.isfinite(similarity).sum())
        nearest = np.argsort(-similarity, kind="stable")[:min(k, usable)]
        return [self._labels[int(i)] for i in nearest]

    def support(self, image_key: str, image: np.ndarray, bbox: Sequence[float], label: str, *, k: int = 10,
                min_class_agreement: float = 0.5) -> float | None:
        """The share of the `k` look-alikes (other images) of the box's crop that carry `label`; None where the
        dataset gives no basis: a class the descriptor does not group here, an unusable crop, too few look-alikes."""
        if self.class_agreement(k).get(label, 0.0) < min_class_agreement:
            return None
        descriptor = crop_descriptor(image, bbox)
        labels = self.look_alikes(image_key, descriptor, k) if descriptor is not None else []
        return labels.count(label) / k if len(labels) == k else None

    def class_agreement(self, k: int, *, most: int = CLASS_SAMPLE) -> dict[str, float]:
        """Per label, the median share of its instances' `k` look-alikes (other images) that carry it: how well
        the descriptor groups that class in this dataset. At most `most` instances are queried (an even spread);
        computed once per `k`."""
        if (k, most) in self._agreement:
            return self._agreement[(k, most)]
        chosen = np.linspace(0, len(self) - 1, min(most, len(self))).round().astype(int) if len(self) else []
        shares: dict[str, list[float]] = {}
        for i in dict.fromkeys(int(j) for j in chosen):
            labels = self.look_alikes(self._images[i], self._descriptors[i], k)
            if len(labels) == k:
                shares.setdefault(self._labels[i], []).append(labels.count(self._labels[i]) / k)
        self._agreement[(k, most)] = {label: float(np.median(values)) for label, values in shares.items()}
        return self._agreement[(k, most)]


class LabelConsistencyJudge(BaseJudge):
    """Rejects instances whose look-alikes in other images carry another label (see the module docstring)."""

    id = "dataset.label_consistency"

    def __init__(self, index: ConsistencyIndex, *, k: int = 10, max_agreement: float = 0.0,
                 alpha: float = 0.001, min_class_agreement: float = 0.5) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.index = index
        self.k = k
        self.max_agreement = max_agreement
        self.alpha = alpha
        self.min_class_agreement = min_class_agreement
        self._shares: dict[str, float] = {}

    def judge(self, item: JudgeInput) -> Verdict:
        """Query the index for every instance of the sample."""
        annotation = item.sample.annotation
        reasons: list[str] = []
        lowest = float("inf")
        grouped = self.index.class_agreement(self.k)
        for i, inst in enumerate(annotation.instances if annotation is not None else []):
            if grouped.get(inst.category, 0.0) < self.min_class_agreement:
                continue  # the descriptor does not group this class here: its look-alikes say nothing
            descriptor = crop_descriptor(np.asarray(item.image), inst.bbox)
            if descriptor is None:
                continue
            labels = self.index.look_alikes(item.sample.image_path, descriptor, self.k)
            if len(labels) < self.k:
                continue
            agreement = sum(label == inst.category for label in labels) / len(labels)
            lowest = min(lowest, agreement)
            other, count = Counter(labels).most_common(1)[0]
            chance = binomial_tail(count, len(labels), self._share(other))
            if agreement <= self.max_agreement and chance < self.alpha:
                reasons.append(f"instance {i} ({inst.category}): its {len(labels)} nearest look-alikes in other "
                               f"images are labelled {other} ({count}/{len(labels)}), {agreement:.0%} "
                               f"{inst.category}: label likely wrong")
        scores = {"min_label_agreement": lowest} if lowest != float("inf") else {}
        return Verdict(judge=self.id, decision=Decision.reject if reasons else Decision.accept, reasons=reasons,
                       scores=scores)

    def _share(self, label: str) -> float:
        if label not in self._shares:
            self._shares[label] = self.index.label_share(label)
        return self._shares[label]


def binomial_tail(count: int, n: int, p: float) -> float:
    """P(X ≥ count) for X ~ Binomial(n, p): how often `count` of `n` look-alikes would carry a label by chance."""
    return float(sum(math.comb(n, j) * p ** j * (1.0 - p) ** (n - j) for j in range(count, n + 1)))
