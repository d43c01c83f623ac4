"""Atomic writes and lossless PNG encoding."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthloop.tools.io import atomic_write_bytes, atomic_write_json, atomic_write_png, encode_png


@pytest.mark.parametrize("shape", [(40, 50, 3), (33, 17)])
def test_png_round_trips_exactly(shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(array))))
    assert decoded.shape == array.shape and np.array_equal(decoded, array)


def test_png_encoding_is_deterministic_and_accepts_pil_images() -> None:
    array = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert encode_png(array) == encode_png(array.copy()) == encode_png(Image.fromarray(array))


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "deep" / "a.bin", b"one")
    atomic_write_bytes(tmp_path / "deep" / "a.bin", b"two")
    atomic_write_json(tmp_path / "deep" / "b.json", {"k": [1, 2]})
    atomic_write_png(tmp_path / "deep" / "c.png", np.zeros((8, 8, 3), np.uint8))
    assert sorted(os.listdir(tmp_path / "deep")) == ["a.bin", "b.json", "c.png"]
    assert (tmp_path / "deep" / "a.bin").read_bytes() == b"two"


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_text() == '{"ok": true}\n' and os.listdir(tmp_path) == ["x.json"]
