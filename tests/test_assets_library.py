"""The asset library: the user's cut-out folders (and every way they can be wrong), COCO cut-outs, coverage
messages, and the installed libraries where Debian's packages are present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from assetdata import BLUE, RED, cutout, make_assets, make_coco
from PIL import Image

from synthloop.tools.assets.coverage import MIN_EXEMPLARS, coverage
from synthloop.tools.assets.library import AssetLibrary
from synthloop.tools.assets.sources import TUXPAINT_DIR
from synthloop.tools.assets.types import AssetError


def _library(tmp_path: Path, assets: Path | None = None, **kwargs) -> AssetLibrary:
    return AssetLibrary(assets_dir=assets, sources=kwargs.pop("sources", ["user"]), cache_dir=tmp_path / "cache",
                        **kwargs)


def test_user_cutouts_are_used_for_their_class(tmp_path: Path) -> None:
    assets = make_assets(tmp_path / "assets", {"cup": [("ellipse", RED), ("square", RED)], "fork": [("tri", BLUE)]})
    library = _library(tmp_path, assets)
    cups = library.select("cup", ["kitchen"], ["cup", "fork"])
    assert sorted(a.id for a in cups.assets) == ["user:cup/0.png", "user:cup/1.png"]
    assert {a.licence for a in cups.assets} == {"user-provided"}
    assert all(a.kind == "user" and 0.5 <= a.alpha_quality <= 1.0 for a in cups.assets)
    assert library.select("plate").assets == ()


def test_coverage_names_sources_counts_and_gaps(tmp_path: Path) -> None:
    assets = make_assets(tmp_path / "assets", {"cup": [("ellipse", RED)] * 2,
                                               "fork": [("tri", BLUE)] * MIN_EXEMPLARS})
    report = coverage(["cup", "fork", "crack"], _library(tmp_path, assets))
    assert report["cup"].message.startswith("cup: 2 photos (your assets); few exemplars (2)")
    assert report["fork"].message == f"fork: {MIN_EXEMPLARS} photos (your assets)" and not report["fork"].warning
    assert report["crack"].source == "procedural" and report["crack"].exemplars == 0
    assert report["crack"].message == ("crack: no real examples, procedural shapes; give examples with "
                                       "--assets DIR/crack/*.png")


@pytest.mark.parametrize(("make", "reason"), [
    (lambda root: (root / "cup").mkdir(parents=True) or (root / "cup" / "notes.txt").write_text("hi"),
     "not a readable image"),
    (lambda root: (root / "cup").mkdir(parents=True) or Image.new("RGB", (30, 30), RED).save(root / "cup/a.png"),
     "has no transparency"),
    (lambda root: (root / "cup").mkdir(parents=True) or Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(
        root / "cup/a.png"), "fully transparent"),
    (lambda root: (root / "cup").mkdir(parents=True), "has no usable cut-out"),
    (lambda root: root.mkdir(parents=True) or cutout("square", RED).save(root / "loose.png"), "stray file"),
    (lambda root: root.mkdir(parents=True), "assets folder is empty"),
    (lambda root: None, "does not exist"),
])
def test_bad_asset_folders_fail_with_one_line_naming_path_and_reason(tmp_path: Path, make, reason: str) -> None:
    root = tmp_path / "assets"
    make(root)
    with pytest.raises(AssetError) as info:
        _library(tmp_path, root)
    message = str(info.value)
    assert reason in message and "\n" not in message
    assert message.startswith(str(root))
    assert isinstance(info.value, ValueError)


def test_bad_input_leaves_the_users_files_alone(tmp_path: Path) -> None:
    root = make_assets(tmp_path / "assets", {"cup": [("ellipse", RED)]})
    (root / "cup" / "broken.png").write_bytes(b"not a png")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(AssetError, match=r"broken\.png: not a readable image"):
        _library(tmp_path, root)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_coco_instances_are_cut_out_by_their_masks(tmp_path: Path) -> None:
    coco_json, images = make_coco(tmp_path / "coco")
    library = _library(tmp_path, coco=(str(coco_json), str(images)), sources=["coco"])
    cups, plates = library.select("cup"), library.select("plate")
    assert [a.source for a in cups.assets] == ["coco"] and len(plates.assets) == 1
    rgba = np.array(Image.open(cups.assets[0].path))[1:-1, 1:-1]  # inside its 1 px transparent margin
    original = np.array(Image.open(images / "a.png").convert("RGB"))
    assert rgba.shape == (40, 40, 4) and (rgba[:, :, 3] == 255).all()  # the polygon fills its box
    assert np.array_equal(rgba[:, :, :3], original[10:50, 10:50])
    plate = np.array(Image.open(plates.assets[0].path))[1:-1, 1:-1]
    assert plate.shape == (40, 40, 4) and (plate[:, :, 3] == 255).all()


def test_a_coco_file_whose_images_are_missing_is_one_clear_error(tmp_path: Path) -> None:
    coco_json, images = make_coco(tmp_path / "coco")
    (images / "b.png").unlink()
    library = _library(tmp_path, coco=(str(coco_json), str(images)), sources=["coco"])
    with pytest.raises(AssetError, match=r"b\.png: image listed in the reference COCO file is missing"):
        library.select("plate")
    with pytest.raises(AssetError, match="reference COCO file does not exist"):
        _library(tmp_path, coco=(str(tmp_path / "nope.json"), str(images)), sources=["coco"])


installed = pytest.mark.skipif(not os.path.isdir(TUXPAINT_DIR), reason="Debian's tuxpaint-stamps-default is not "
                                                                        "installed (scripts/setup.sh installs it)")


@installed
def test_installed_library_covers_common_classes_with_photos(tmp_path: Path) -> None:
    library = AssetLibrary(sources=["tuxpaint"], cache_dir=tmp_path / "cache")
    report = coverage(["cup", "dog", "crack"], library, context=["kitchen"])
    assert report["cup"].source == "tuxpaint" and "photo" in report["cup"].message
    assert report["dog"].exemplars >= 1 and all("dog" in a or "dingo" not in a for a in report["dog"].asset_ids)
    assert report["crack"].source == "procedural"
    again = AssetLibrary(sources=["tuxpaint"], cache_dir=tmp_path / "cache")  # read from the index cache
    assert [a.id for a in again.assets] == [a.id for a in library.assets]
    assert list((tmp_path / "cache").glob("index-*.json"))


@installed
def test_distractors_leave_out_the_classes_and_their_siblings(tmp_path: Path) -> None:
    library = AssetLibrary(sources=["tuxpaint"], cache_dir=tmp_path / "cache")
    if library.matcher.wordnet is None:  # CI runs scripts/setup.sh, which installs it: there a skip would hide a bug
        missing = "Debian's wordnet-base is not installed (scripts/setup.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    every = {a.extra.get("head") for a in library.distractor_pool([])}
    assert {"lemon", "lime", "glass", "goat"} <= every
    senses = [library.sense(name, other_classes=["orange", "cup", "sheep"]) for name in ("orange", "cup", "sheep")]
    chosen = {a.extra.get("head") for a in library.distractor_pool(senses)}
    assert not chosen & {"orange", "lemon", "lime", "cup", "glass", "sheep", "goat"}, "citrus, containers, bovids"
    assert len(chosen) >= 0.9 * len(every), "only the close relatives leave the clutter"
