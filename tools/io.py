"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = None) -> None:
    """Atomically write `value` as JSON (keys kept in insertion order, so output is reproducible)."""
    atomic_write_text(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> None:
    """Atomically write one JSON value per line."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def encode_png(image: Any, *, compress_level: int = 1) -> bytes:
    """Encode an (H, W, 3) uint8 RGB array (or a PIL image) as PNG bytes.

    OpenCV's encoder with zlib level 1 and the run-length strategy: ~15 ms for a noisy 512² image against
    ~21 ms for Pillow's level 1, ~15% smaller files, and it releases the GIL so render threads overlap.
    PNG stays lossless at any level.
    """
    import cv2
    import numpy as np

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 3:
        array = np.ascontiguousarray(array[:, :, ::-1])  # OpenCV expects BGR
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, compress_level,
                                               cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {array.shape}")
    return encoded.tobytes()


def atomic_write_png(path: str | os.PathLike[str], image: Any, *, compress_level: int = 1) -> None:
    """Atomically write an image as PNG."""
    atomic_write_bytes(path, encode_png(image, compress_level=compress_level))


def atomic_link_or_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Place `src` at `dst` as a hard link (a copy where links are impossible), replacing `dst` atomically.

    The link or copy is made under a temporary name in `dst`'s folder and renamed over `dst`, so a reader
    never sees a half-copied file.
    """
    import shutil

    target = Path(dst)
    if target.exists() and os.path.samefile(src, target):
        return  # already linked (and rename() between two links of one file is a no-op that keeps both)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # cross-device, or a filesystem without hard links
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        Path(tmp).unlink(missing_ok=True)  # left behind when target was another link to the same file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
