"""Deterministic seeds and split assignment, independent of batch size, worker count and resume points."""

from __future__ import annotations

import hashlib
import math

from synthloop.tools.types import Splits

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def derive_seed(base: int, *parts: int | str) -> int:
    """A 32-bit seed from a base seed and any identifying parts (e.g. sample index, attempt)."""
    text = ":".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def split_for_index(index: int, splits: Splits) -> str:
    """Split of a sample index: a golden-ratio sequence keeps every prefix of indices close to the fractions."""
    u = (index * _GOLDEN) % 1.0
    if u < splits.train:
        return "train"
    if u < splits.train + splits.val:
        return "val"
    return "test"
