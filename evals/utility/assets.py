"""Train / held-out split of the asset library's exemplars, per class, so the test set shows objects that no
training image used.

`split_assets(classes, out_dir, held_out=…, seed=…)`:
1. for each class, the asset library's selection: Tux Paint / openclipart photographs and drawings
   (`use_drawings="always"`, so that classes have enough exemplars to split), or the user's own cut-outs
   (`assets_dir`);
2. a seeded permutation of the exemplars; the first `held_out` share (at least one) is held out, the rest
   trains (at least one);
3. every exemplar written as an RGBA PNG cut-out (with a transparent margin) into `out_dir/train/<class>/` or
   `out_dir/held_out/<class>/`, folders the copy_paste renderer reads as the user's cut-outs (`assets_dir`,
   `sources: [user]`), so a run draws only from its side of the split;
4. `out_dir/split.json`: the asset ids on each side (with source and licence), for the report.
A class with fewer than two exemplars cannot be split: `UtilityError` names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthloop.tools.io import atomic_write_json, atomic_write_png


class UtilityError(ValueError):
    """The utility eval cannot run as asked (classes, data, sizes); the message is one line naming why."""


@dataclass(frozen=True)
class AssetSplit:
    """Where each side of the split lives, and which library assets went where (class → asset ids)."""

    train_dir: Path
    held_out_dir: Path
    train: dict[str, list[str]]
    held_out: dict[str, list[str]]


def split_assets(classes: Sequence[str], out_dir: Path, *, held_out: float = 0.35, seed: int = 0,
                 assets_dir: Path | None = None, cache_dir: str | None = None) -> AssetSplit:
    """Split every class's exemplars into train and held-out cut-out folders (see the module docstring);
    `assets_dir`: split the user's own cut-outs (one folder per class) instead of the installed library."""
    from synthloop.tools.assets.library import AssetLibrary, cutout
    from synthloop.tools.assets.types import AssetError

    if not 0.0 < held_out < 1.0:
        raise UtilityError(f"held-out share must be between 0 and 1, got {held_out}")
    try:
        library = (AssetLibrary(assets_dir=assets_dir, sources=("user",), cache_dir=cache_dir) if assets_dir
                   else AssetLibrary(use_drawings="always", sources=("tuxpaint", "openclipart"), cache_dir=cache_dir))
    except AssetError as exc:
        raise UtilityError(f"cut-outs: {exc}") from exc
    out_dir = Path(out_dir)
    sides: dict[str, dict[str, list[str]]] = {"train": {}, "held_out": {}}
    records: dict[str, dict[str, list[dict[str, str]]]] = {"train": {}, "held_out": {}}
    for index, name in enumerate(classes):
        selection = library.select(name, other_classes=list(classes))
        assets = sorted(selection.assets, key=lambda a: a.id)
        if len(assets) < 2:
            raise UtilityError(f"class '{name}' has {len(assets)} library cut-out(s); the held-out test needs at "
                               "least two (one to train on, one to hold out): choose another class")
        order = np.random.default_rng([seed, index]).permutation(len(assets))
        n_held = min(len(assets) - 1, max(1, round(held_out * len(assets))))
        for rank, position in enumerate(order):
            asset = assets[int(position)]
            side = "held_out" if rank < n_held else "train"
            folder = out_dir / side / name
            # A transparent 2 px margin: a cut-out cropped to its object may have no transparent pixel left.
            padded = np.pad(np.asarray(cutout(asset.path)), ((2, 2), (2, 2), (0, 0)))
            atomic_write_png(folder / f"{len(sides[side].setdefault(name, [])):03d}.png", padded, compress_level=1)
            sides[side][name].append(asset.id)
            records[side].setdefault(name, []).append({"id": asset.id, "source": asset.source,
                                                       "kind": asset.kind, "licence": asset.licence})
    atomic_write_json(out_dir / "split.json", {"seed": seed, "held_out_share": held_out, **records}, indent=2)
    return AssetSplit(train_dir=out_dir / "train", held_out_dir=out_dir / "held_out", train=sides["train"],
                      held_out=sides["held_out"])
