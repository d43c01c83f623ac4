"""The asset library: every cut-out source indexed once (cached on disk), matched to classes, loaded on demand.

Sources, in the order they win for a class:
1. `user`: the user's cut-outs (`--assets DIR`, one folder per class, matched by folder name);
2. `coco`: instances cut out of the user's COCO dataset (matched by category name);
3. `tuxpaint` / `openclipart`: installed libraries, matched by description through WordNet (matcher.py);
   photographs first, drawings only when a class has no photograph (`use_drawings`);
4. nothing: the renderer draws procedural shapes, and `coverage` says so.

The library index (Tux Paint and openclipart records, without pixels) is cached as JSON under `cache_dir`
(default `$XDG_CACHE_HOME/synthloop/assets`), keyed by the source folders and the modification times of every
folder in them, so an installed or removed package rebuilds it. Cut-outs are decoded when first used and kept
in memory (cropped to the object, longer side bounded).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from synthloop.tools.assets.coco_cutouts import cut_out_coco
from synthloop.tools.assets.describe import head_term, is_symbolic
from synthloop.tools.assets.images import alpha_quality, read_rgba
from synthloop.tools.assets.matcher import ClassSense, Matcher, normalise_name
from synthloop.tools.assets.sources import (
    OPENCLIPART_DIR,
    TUXPAINT_DIR,
    scan_openclipart,
    scan_tuxpaint,
    scan_user_assets,
)
from synthloop.tools.assets.types import Asset, AssetError
from synthloop.tools.assets.wordnet import load_wordnet
from synthloop.tools.io import atomic_write_json

logger = logging.getLogger(__name__)
SOURCES = ("user", "coco", "tuxpaint", "openclipart")
MIN_ALPHA_QUALITY = 0.5
MAX_PER_CLASS = 40  # distinct exemplars kept per class (the best alpha first)
INDEX_VERSION = 2
DrawingPolicy = Literal["when_no_photos", "always", "never"]


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/synthloop/assets` (or ~/.cache/synthloop/assets)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synthloop" / "assets"


@dataclass(frozen=True)
class Selection:
    """The cut-outs chosen for one class and what the class was taken to mean."""

    name: str
    assets: tuple[Asset, ...]
    sense: ClassSense

    @property
    def source(self) -> str:
        """Where most of its cut-outs come from ('procedural' when none)."""
        if not self.assets:
            return "procedural"
        counts: dict[str, int] = {}
        for asset in self.assets:
            counts[asset.source] = counts.get(asset.source, 0) + 1
        return max(counts, key=lambda s: counts[s])


class AssetLibrary:
    """Indexed cut-outs from the chosen sources.

    assets_dir: the user's cut-outs (one folder per class); coco: (instances json, images folder) of the user's
    data; sources: which of user, coco, tuxpaint, openclipart to use; cache_dir: index and COCO cut-out cache;
    tuxpaint_dir / openclipart_dir: where the Debian packages put them; use_drawings: when drawings may stand
    in for photographs.
    """

    def __init__(self, *, assets_dir: str | os.PathLike[str] | None = None,
                 coco: tuple[str, str] | None = None, sources: Sequence[str] = SOURCES,
                 cache_dir: str | os.PathLike[str] | None = None, tuxpaint_dir: str = TUXPAINT_DIR,
                 openclipart_dir: str = OPENCLIPART_DIR, use_drawings: DrawingPolicy = "when_no_photos") -> None:
        unknown = sorted(set(sources) - set(SOURCES))
        if unknown:
            raise AssetError(", ".join(unknown), f"unknown asset source (known: {', '.join(SOURCES)})")
        self.assets_dir = assets_dir
        self.coco = coco
        self.sources = tuple(sources)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.tuxpaint_dir = tuxpaint_dir
        self.openclipart_dir = openclipart_dir
        self.use_drawings = use_drawings
        self.matcher = Matcher(load_wordnet())
        self.skipped_svg = 0
        self._assets: list[Asset] | None = None
        self._lock = threading.Lock()
        self._quality: dict[str, float] = {}
        # The user's input is checked now, so a bad folder or file fails before anything is rendered.
        self._user = scan_user_assets(assets_dir) if "user" in self.sources and assets_dir is not None else []
        if coco is not None and "coco" in self.sources:
            for path, what in ((Path(coco[0]).expanduser(), "reference COCO file"),
                               (Path(coco[1]).expanduser(), "reference images folder")):
                if not path.exists():
                    raise AssetError(path, f"{what} does not exist")

    # --- index ----------------------------------------------------------------------------------------------

    @property
    def assets(self) -> list[Asset]:
        """Every indexed asset (built on first use; the user's and COCO cut-outs checked then)."""
        with self._lock:
            if self._assets is None:
                self._assets = self._build()
            return self._assets

    def _build(self) -> list[Asset]:
        assets: list[Asset] = list(self._user)
        if "coco" in self.sources and self.coco is not None:
            assets += cut_out_coco(self.coco[0], self.coco[1], self.cache_dir)
        library = [s for s in ("tuxpaint", "openclipart") if s in self.sources]
        if library:
            assets += self._library_index(library)
        return assets

    def _library_index(self, sources: list[str]) -> list[Asset]:
        roots = {"tuxpaint": self.tuxpaint_dir, "openclipart": self.openclipart_dir}
        key = _folders_key([roots[s] for s in sources])
        cached = self.cache_dir / f"index-{key}.json"
        if cached.is_file():
            try:
                data = json.loads(cached.read_text(encoding="utf-8"))
                if data.get("version") == INDEX_VERSION:
                    self.skipped_svg = int(data.get("skipped_svg", 0))
                    return [Asset.from_dict(a) for a in data["assets"]]
            except (OSError, ValueError, KeyError, TypeError):
                logger.info("asset index %s unreadable; rebuilding", cached)
        assets: list[Asset] = []
        if "tuxpaint" in sources:
            found, self.skipped_svg = scan_tuxpaint(self.tuxpaint_dir)
            assets += found
        if "openclipart" in sources:
            assets += scan_openclipart(self.openclipart_dir)
        wordnet = self.matcher.wordnet
        assets = [replace(a, extra={"head": head_term(a.description, wordnet)}) for a in assets]
        try:
            atomic_write_json(cached, {"version": INDEX_VERSION, "skipped_svg": self.skipped_svg,
                                       "assets": [a.as_dict() for a in assets]})
        except OSError as exc:  # a read-only cache is no reason to fail
            logger.info("asset index not cached (%s)", exc)
        return assets

    # --- matching -------------------------------------------------------------------------------------------

    def sense(self, name: str, context: Iterable[str] = (), other_classes: Iterable[str] = ()) -> ClassSense:
        """What class `name` is taken to mean in this context."""
        return self.matcher.class_sense(name, list(context), list(other_classes))

    def select(self, name: str, context: Iterable[str] = (), other_classes: Iterable[str] = ()) -> Selection:
        """The cut-outs for class `name`: the user's, else the user's COCO instances, else library photographs
        (drawings per `use_drawings`); at most MAX_PER_CLASS, each with usable alpha."""
        others = [o for o in other_classes if o != name]
        sense = self.sense(name, context, others)
        label = normalise_name(name)
        for source in ("user", "coco"):
            own = [a for a in self.assets if a.source == source and a.label == label]
            if own:
                return Selection(name, tuple(self._usable(own)), sense)
        matched = [a for a in self.assets if a.source in ("tuxpaint", "openclipart") and self._matches(sense, a)]
        photos = [a for a in matched if a.kind == "photo"]
        drawings = [a for a in matched if a.kind == "drawing"]
        if self.use_drawings == "never" or (self.use_drawings == "when_no_photos" and self._usable(photos)):
            chosen = photos
        else:
            chosen = photos + drawings
        return Selection(name, tuple(self._usable(chosen)), sense)

    def _matches(self, sense: ClassSense, asset: Asset) -> bool:
        return self.matcher.asset_matches(sense, asset.description, list(asset.folder_words),
                                          head=asset.extra.get("head"))

    def distractors(self, senses: Sequence[ClassSense], limit: int = 24) -> list[Asset]:
        """Up to `limit` usable photographs of the distractor pool (unlabelled clutter), spread over the library."""
        pool = self.distractor_pool(senses)
        step = max(1, len(pool) // limit)
        return self._usable(pool[::step])[:limit]

    def distractor_pool(self, senses: Sequence[ClassSense]) -> list[Asset]:
        """Installed photographs that may stand beside these classes unlabelled: none that matches a class or is a
        sibling of one, no people, symbols or seasonal stamps."""
        labels = {normalise_name(s.name) for s in senses}
        return [a for a in self.assets if a.kind == "photo" and a.source == "tuxpaint"
                and not any(self._matches(s, a) or self._sibling(s, a) for s in senses)
                and normalise_name(a.extra.get("head", "")) not in labels
                and not is_symbolic(list(a.folder_words))
                and not any(w in ("symbols", "people", "space", "seasonal") for w in a.folder_words)]

    def _sibling(self, sense: ClassSense, asset: Asset) -> bool:
        """Whether the asset shows a kind of thing next to the class under the same WordNet parent (a lemon beside
        the class orange, both citrus; a glass beside cup): unlabelled, it would look like a missed label, to a
        detector judging the data and to a model trained on it."""
        wordnet = self.matcher.wordnet
        if wordnet is None or not sense.synsets:
            return False
        head = asset.extra.get("head", "")
        shown = self.matcher.asset_sense(head, [*asset.folder_words, asset.description]) if head else None
        return shown is not None and any(self.matcher.steps_up(shown, parent) == 1
                                         for parent in wordnet.synset(sense.synsets[0]).hypernyms)

    def _usable(self, assets: list[Asset]) -> list[Asset]:
        """Assets whose cut-out loads and whose alpha outlines an object, best alpha first, ids breaking ties."""
        scored = []
        for asset in assets:
            quality = self.quality(asset)
            if quality >= MIN_ALPHA_QUALITY:
                scored.append(replace(asset, alpha_quality=quality))
        scored.sort(key=lambda a: (-(a.alpha_quality or 0.0) if a.source not in ("user", "coco") else 0.0, a.id))
        return sorted(scored[:MAX_PER_CLASS], key=lambda a: a.id)

    def quality(self, asset: Asset) -> float:
        """The asset's alpha quality (measured once; 0 when it cannot be read)."""
        if asset.alpha_quality is not None:
            return asset.alpha_quality
        if asset.id not in self._quality:
            try:
                self._quality[asset.id] = alpha_quality(cutout(asset.path))
            except AssetError as exc:
                logger.info("asset skipped: %s", exc)
                self._quality[asset.id] = 0.0
        return self._quality[asset.id]


@functools.lru_cache(maxsize=512)
def cutout(path: str, max_side: int = 512) -> np.ndarray:
    """The RGBA cut-out at `path`, cropped to the object, longer side ≤ `max_side` (read once, read-only)."""
    rgba = read_rgba(path, max_side=max_side)
    rgba.setflags(write=False)
    return rgba


def _folders_key(roots: list[str]) -> str:
    """A key that changes when any folder below `roots` changes (files added, removed or renamed)."""
    digest = hashlib.blake2b(f"v{INDEX_VERSION}".encode(), digest_size=8)
    for root in roots:
        digest.update(root.encode())
        if not os.path.isdir(root):
            continue
        for folder, _dirs, _files in sorted(os.walk(root)):
            digest.update(f"{folder}:{os.stat(folder).st_mtime_ns}".encode())
    return digest.hexdigest()
