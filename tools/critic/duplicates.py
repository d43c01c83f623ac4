"""Exact and near-duplicate detection: SHA-256 of the pixels, and a 256-bit difference hash."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
from PIL import Image

from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.types import Decision, Verdict

HASH_SIDE = 16  # 16×16 = 256-bit dHash: a 64-bit one confuses layouts that share a background gradient.


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 over the raw pixels and their shape (two identical images hash the same)."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def difference_hash(image: np.ndarray) -> str:
    """256-bit difference hash (hex): signs of horizontal gradients of a 17×16 greyscale thumbnail."""
    grey = Image.fromarray(image).convert("L")
    grey.draft("L", (HASH_SIDE * 4, HASH_SIDE * 4))
    small = np.asarray(grey.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return np.packbits(bits).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes of equal length."""
    return int(np.unpackbits(np.frombuffer(bytes.fromhex(a), np.uint8) ^ np.frombuffer(bytes.fromhex(b), np.uint8))
               .sum())


class DuplicateIndex:
    """Hashes of the samples kept so far; thread-safe; a sample never matches itself (same id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exact: dict[str, str] = {}
        self._ids: list[str] = []
        self._bits = np.zeros((0, HASH_SIDE * HASH_SIDE), dtype=bool)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, sample_id: str, sha256: str, dhash: str) -> None:
        """Record a kept sample (idempotent for the same id)."""
        with self._lock:
            if sample_id in self._ids:
                return
            self._exact.setdefault(sha256, sample_id)
            self._ids.append(sample_id)
            row = np.unpackbits(np.frombuffer(bytes.fromhex(dhash), np.uint8)).astype(bool)[None, :]
            self._bits = np.concatenate([self._bits, row])

    def exact_match(self, sample_id: str, sha256: str) -> str | None:
        """Id of a different kept sample with identical pixels, if any."""
        with self._lock:
            other = self._exact.get(sha256)
        return other if other is not None and other != sample_id else None

    def nearest(self, sample_id: str, dhash: str) -> tuple[str | None, int]:
        """(id, Hamming distance) of the closest different kept sample, or (None, 257) when there is none."""
        with self._lock:
            ids, bits = list(self._ids), self._bits
        if not ids:
            return None, HASH_SIDE * HASH_SIDE + 1
        query = np.unpackbits(np.frombuffer(bytes.fromhex(dhash), np.uint8)).astype(bool)
        distances = (bits != query).sum(axis=1)
        for own in (i for i, sid in enumerate(ids) if sid == sample_id):
            distances[own] = HASH_SIDE * HASH_SIDE + 1
        best = int(distances.argmin())
        return ids[best], int(distances[best])


class DuplicateJudge:
    """Rejects a sample whose pixels equal, or nearly equal, a sample already kept."""

    id = "rules.duplicate"

    def __init__(self, index: DuplicateIndex, max_hamming: int = 12) -> None:
        self.index = index
        self.max_hamming = max_hamming

    def judge(self, item: JudgeInput) -> Verdict:
        """Compare the sample's hashes (computed if the sample lacks them) with the index."""
        sample = item.sample
        sha = sample.image_sha256 or pixel_sha256(item.image)
        dhash = sample.phash or difference_hash(item.image)
        reasons: list[str] = []
        twin = self.index.exact_match(sample.id, sha)
        if twin is not None:
            reasons.append(f"exact duplicate of kept sample {twin}")
        nearest, distance = self.index.nearest(sample.id, dhash)
        if twin is None and nearest is not None and distance <= self.max_hamming:
            reasons.append(f"near duplicate of kept sample {nearest} (hash distance {distance} ≤ {self.max_hamming})")
        decision = Decision.reject if reasons else Decision.accept
        return Verdict(judge=self.id, decision=decision, reasons=reasons,
                       scores={"nearest_hash_distance": float(distance)})
