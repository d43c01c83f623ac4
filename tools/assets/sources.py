"""Where cut-outs come from: the user's folder (one sub-folder per class), Tux Paint stamps and openclipart
clip art installed by Debian packages. Each scanner returns `Asset` records without decoding images (except
the user's, which are checked now so a bad file fails before a run starts)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from synthloop.tools.assets.describe import filename_description, path_context
from synthloop.tools.assets.images import MIN_OBJECT_SIDE, RASTER_SUFFIXES, alpha_quality, read_rgba, svg_supported
from synthloop.tools.assets.matcher import normalise_name
from synthloop.tools.assets.types import LICENCES, Asset, AssetError

TUXPAINT_DIR = "/usr/share/tuxpaint/stamps"
OPENCLIPART_DIR = "/usr/share/openclipart/png"
MIN_LIBRARY_SIDE = 48  # smaller clip art is an icon
MAX_LIBRARY_PIXELS = 16_000_000  # posters, not objects, and slow to decode
_VARIANT_SUFFIXES = ("_mirror", "_back", "_flip")


def scan_user_assets(root: str | os.PathLike[str]) -> list[Asset]:
    """The user's cut-outs: `root/<class name>/*.png` with transparency. Raises AssetError (path and reason)
    for a missing folder, a stray file, a non-image, an image without transparency or a class folder with no
    usable cut-out."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise AssetError(base, "assets folder does not exist or is not a folder")
    assets: list[Asset] = []
    class_dirs = sorted(p for p in base.iterdir() if not p.name.startswith("."))
    if not class_dirs:
        raise AssetError(base, "assets folder is empty: put cut-outs in one folder per class (DIR/cup/*.png)")
    for entry in class_dirs:
        if not entry.is_dir():
            raise AssetError(entry, "stray file: cut-outs go in one folder per class (DIR/<class>/*.png)")
        label = normalise_name(entry.name)
        usable = 0
        for file in sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rgba = read_rgba(file, max_side=256)  # raises for non-images and images without alpha
            quality = alpha_quality(rgba)
            if quality == 0.0:
                raise AssetError(file, f"object too small to cut out (under {MIN_OBJECT_SIDE} px)")
            usable += 1
            relative = file.relative_to(base).as_posix()
            assets.append(Asset(id=f"user:{relative}", source="user", licence=LICENCES["user"], path=str(file),
                                description=f"{label} ({file.name})", kind="user", label=label,
                                alpha_quality=quality))
        if usable == 0:
            raise AssetError(entry, f"class folder '{entry.name}' has no usable cut-out (PNG with transparency)")
    return assets


def scan_tuxpaint(root: str | os.PathLike[str] = TUXPAINT_DIR) -> tuple[list[Asset], int]:
    """Tux Paint stamps under `root` (photographic PNGs, cartoon PNGs, SVGs as drawings when they can be
    rasterised), described by the first line of their NAME.txt. Returns (assets, SVGs skipped)."""
    base = Path(root)
    assets: list[Asset] = []
    skipped_svg = 0
    if not base.is_dir():
        return assets, 0
    for path in sorted(base.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in (".png", ".svg") or path.stem.endswith(_VARIANT_SUFFIXES):
            continue
        if suffix == ".svg" and not svg_supported():
            skipped_svg += 1
            continue
        if suffix == ".png" and path.with_suffix(".svg").exists() and svg_supported():
            continue  # the PNG is a thumbnail of the SVG
        text_file = path.with_suffix(".txt")
        description = _first_line(text_file) or filename_description(path)
        flags = _first_lines(path.with_suffix(".dat"))
        drawing = suffix == ".svg" or "cartoon" in path.relative_to(base).parts
        relative = path.relative_to(base).with_suffix("").as_posix()
        assets.append(Asset(id=f"tuxpaint:{relative}", source="tuxpaint", licence=LICENCES["tuxpaint"],
                            path=str(path), description=description, kind="drawing" if drawing else "photo",
                            folder_words=tuple(path_context(path, base)), noflip="noflip" in flags))
    return assets, skipped_svg


def scan_openclipart(root: str | os.PathLike[str] = OPENCLIPART_DIR) -> list[Asset]:
    """openclipart PNGs under `root` (drawings), described by their file names; icons, tiny images and
    black-and-white twins of coloured drawings are left out."""
    base = Path(root)
    if not base.is_dir():
        return []
    paths = sorted(p for p in base.rglob("*.png") if "icons" not in p.relative_to(base).parts)
    names = {p.as_posix() for p in paths}
    assets = []
    for path in paths:
        if path.stem.endswith("_bw") and path.with_name(path.stem[:-3] + ".png").as_posix() in names:
            continue
        try:
            with Image.open(path) as image:
                if min(image.size) < MIN_LIBRARY_SIDE or image.size[0] * image.size[1] > MAX_LIBRARY_PIXELS:
                    continue
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            continue
        relative = path.relative_to(base).with_suffix("").as_posix()
        assets.append(Asset(id=f"openclipart:{relative}", source="openclipart", licence=LICENCES["openclipart"],
                            path=str(path), description=filename_description(path), kind="drawing",
                            folder_words=tuple(path_context(path, base))))
    return assets


def is_raster(path: Path) -> bool:
    """Whether a file name looks like a raster image."""
    return path.suffix.lower() in RASTER_SUFFIXES


def _first_line(path: Path) -> str:
    lines = _first_lines(path)
    return lines[0].strip() if lines else ""


def _first_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[:8]
    except OSError:
        return []
