"""Every requested label exported and read back: one sample set asking for detection, instance and semantic
segmentation, captions, referring expressions and scene graphs in COCO, YOLO, VOC and HF.

Readers here are independent of the exporters: pycocotools for instances and captions, masks decoded by
pycocotools for the semantic maps, plain JSON for refs and scene graphs compared with the samples built by
hand (tests/export_testdata.py), `datasets` for HF. VOC has its own file (test_export_voc.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from export_testdata import ALL_TASKS, LOW_AGREEMENT, make_samples, make_spec
from helpers_coco import ground_truth_as_predictions_ap, load_coco
from PIL import Image

from synthloop.tools.export.records import export_all
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.types import Annotation, ReferringExpression, Relation, Sample, TaskSpec

FORMATS = ("coco", "yolo", "voc", "hf")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TaskSpec, list[Sample]]:
    out = tmp_path_factory.mktemp("tasks") / "ds"
    spec = make_spec(formats=FORMATS, tasks=ALL_TASKS)
    samples = make_samples(out, rich=True)
    export_all(out, spec, samples)
    return out, spec, samples


def _split_samples(samples: list[Sample], split: str) -> list[Sample]:
    return sorted((s for s in samples if s.split == split), key=lambda s: s.id)


def _visible(sample: Sample) -> list[int]:
    return [k for k, inst in enumerate(sample.annotation.instances) if inst.area > 0]


def _ann_of(coco: dict, sample: Sample) -> dict[int, dict]:
    """Instance index → COCO annotation of one sample (annotations come in instance order)."""
    image = next(i for i in coco["images"] if i["sample_id"] == sample.id)
    anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    return dict(zip(_visible(sample), anns, strict=True))


def test_every_output_is_written_and_validates(exported: tuple[Path, TaskSpec, list[Sample]]) -> None:
    out, spec, samples = exported
    for split in spec.splits.names():
        for kind in ("instances", "captions", "refs", "scene_graphs"):
            assert (out / "annotations" / f"{kind}_{split}.json").is_file()
    for sample in samples:
        stem = sample.id
        for path in (f"semantic/{sample.split}/{stem}.png", f"voc/Annotations/{stem}.xml",
                     f"voc/JPEGImages/{stem}.jpg", f"voc/SegmentationClass/{stem}.png",
                     f"yolo/labels/{sample.split}/{stem}.txt", f"hf/{sample.split}/semantic/{stem}.png"):
            assert (out / path).is_file(), path
    assert (out / "semantic" / "classes.json").is_file() and (out / "yolo" / "data.yaml").is_file()
    assert validate_dataset(out) == []


def test_instances_carry_certificates_and_score_ap_one(exported: tuple[Path, TaskSpec, list[Sample]]) -> None:
    out, _, samples = exported
    for split in ("train", "val"):
        gt = load_coco(out / "annotations" / f"instances_{split}.json")
        for iou_type in ("bbox", "segm"):
            assert ground_truth_as_predictions_ap(gt, iou_type) == pytest.approx(1.0)
        for sample in _split_samples(samples, split):
            for k, ann in _ann_of(gt.dataset, sample).items():
                certificate = sample.annotation.instances[k].certificate
                assert ann["certificate"] == {"sources": certificate.sources, "agreement": certificate.agreement}


def test_instances_without_certificates_have_only_the_standard_keys(tmp_path: Path) -> None:
    export_all(tmp_path, make_spec(formats=("coco",), tasks=ALL_TASKS), make_samples(tmp_path), card=False)
    data = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    assert data["annotations"]
    standard = {"id", "image_id", "category_id", "bbox", "area", "segmentation", "iscrowd"}
    assert all(set(ann) == standard for ann in data["annotations"])


def test_captions_read_back_by_pycocotools(exported: tuple[Path, TaskSpec, list[Sample]]) -> None:
    out, _, samples = exported
    for split in ("train", "val", "test"):
        captions = load_coco(out / "annotations" / f"captions_{split}.json")
        instances = load_coco(out / "annotations" / f"instances_{split}.json")
        assert sorted(captions.getImgIds()) == sorted(instances.getImgIds())
        for sample in _split_samples(samples, split):
            image_id = next(i for i, img in instances.imgs.items() if img["sample_id"] == sample.id)
            assert captions.imgs[image_id]["file_name"] == f"{sample.id}.png"
            got = [a["caption"] for a in captions.loadAnns(captions.getAnnIds(imgIds=[image_id]))]
            assert got == sample.annotation.captions and got


def _expected_semantic(coco: dict, image: dict, threshold: float) -> np.ndarray:
    """The semantic map from the COCO file alone, pixel by pixel (pycocotools decodes the masks)."""
    from pycocotools import mask as mask_utils

    height, width = image["height"], image["width"]
    anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    classes_at = [[set() for _ in range(width)] for _ in range(height)]
    uncertain = np.zeros((height, width), dtype=bool)
    for ann in anns:
        if isinstance(ann["segmentation"], dict):
            mask = mask_utils.decode({"size": ann["segmentation"]["size"],
                                      "counts": ann["segmentation"]["counts"].encode()}).astype(bool)
            for y, x in zip(*np.nonzero(mask), strict=True):
                classes_at[y][x].add(ann["category_id"])
            if ann.get("certificate", {}).get("agreement", 1.0) < threshold:
                uncertain |= mask
        else:  # no mask: the whole box is uncertain
            x, y, w, h = ann["bbox"]
            uncertain[math.floor(y) : math.ceil(y + h), math.floor(x) : math.ceil(x + w)] = True
    expected = np.zeros((height, width), dtype=np.uint8)
    for y in range(height):
        for x in range(width):
            found = classes_at[y][x]
            expected[y, x] = 255 if uncertain[y, x] or len(found) > 1 else (found.pop() if found else 0)
    return expected


def test_semantic_maps_match_the_instance_masks_pixel_for_pixel(
    exported: tuple[Path, TaskSpec, list[Sample]],
) -> None:
    out, _, _ = exported
    legend = json.loads((out / "semantic" / "classes.json").read_text())
    assert [(c["id"], c["name"]) for c in legend["classes"]] == [
        (0, "background"), (1, "square"), (2, "disc"), (3, "ring"), (255, "ignore")
    ]
    assert legend["background"] == 0 and legend["ignore"] == 255
    threshold = legend["ignore_below_agreement"]
    assert threshold > LOW_AGREEMENT  # the fixture's low certificates must fall under it
    seen = {"class": 0, "ambiguous": 0, "low": 0}
    for split in ("train", "val"):
        coco = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        for image in coco["images"]:
            with Image.open(out / "semantic" / split / image["file_name"]) as opened:
                assert opened.mode == "L" and opened.size == (image["width"], image["height"])
                values = np.asarray(opened)
            expected = _expected_semantic(coco, image, threshold)
            assert np.array_equal(values, expected), image["file_name"]
            seen["class"] += int(np.isin(values, [1, 2, 3]).sum())
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            seen["low"] += sum(a["certificate"]["agreement"] < threshold for a in anns)
            seen["ambiguous"] += image["sample_id"] == "s005" and int((values == 255).sum())
    assert all(seen.values()), seen  # classes, low-certificate masks and an ambiguous overlap all occurred


def test_refs_point_at_the_referred_boxes(exported: tuple[Path, TaskSpec, list[Sample]]) -> None:
    out, spec, samples = exported
    for split in ("train", "val", "test"):
        refs = json.loads((out / "annotations" / f"refs_{split}.json").read_text())
        coco = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        anns = {a["id"]: a for a in coco["annotations"]}
        expected = []
        for sample in _split_samples(samples, split):
            by_index = _ann_of(coco, sample)
            for ref in sample.annotation.referring:
                if ref.instance in by_index:  # the hidden square (area 0) has no annotation: left out
                    expected.append((by_index[ref.instance]["id"], ref.sentences))
        assert [(r["ann_id"], [s["raw"] for s in r["sentences"]]) for r in refs] == expected
        for ref in refs:
            ann = anns[ref["ann_id"]]
            assert (ref["image_id"], ref["category_id"], ref["split"]) == (ann["image_id"], ann["category_id"], split)
            name = spec.class_names[ann["category_id"] - 1]
            assert all(name in s["tokens"] and s["sent"] == " ".join(s["tokens"]) for s in ref["sentences"])
            assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
        assert len({r["ref_id"] for r in refs}) == len(refs)
    hidden = next(s for s in samples if s.id == "s001")
    assert any(ref.instance == 1 for ref in hidden.annotation.referring)  # the fixture does refer to it


def test_scene_graphs_are_consistent_with_the_boxes(exported: tuple[Path, TaskSpec, list[Sample]]) -> None:
    out, spec, samples = exported
    n_relations = 0
    for split in ("train", "val"):
        graphs = json.loads((out / "annotations" / f"scene_graphs_{split}.json").read_text())
        coco = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        assert [g["image_id"] for g in graphs] == [i["id"] for i in coco["images"]]
        for graph, sample in zip(graphs, _split_samples(samples, split), strict=True):
            anns = [a for a in coco["annotations"] if a["image_id"] == graph["image_id"]]
            assert [(o["object_id"], o["names"], [o["x"], o["y"], o["w"], o["h"]]) for o in graph["objects"]] == [
                (a["id"], [spec.class_names[a["category_id"] - 1]], a["bbox"]) for a in anns
            ]
            boxes = {o["object_id"]: (o["x"], o["y"], o["w"], o["h"]) for o in graph["objects"]}
            visible = set(_visible(sample))
            wanted = [r for r in sample.annotation.relations if r.subject in visible and r.object in visible]
            got = graph["relationships"]
            assert len(got) == len(wanted)
            for rel, expected in zip(got, wanted, strict=True):
                subject, obj = boxes[rel["subject_id"]], boxes[rel["object_id"]]
                assert subject == sample.annotation.instances[expected.subject].bbox
                assert obj == sample.annotation.instances[expected.object].bbox
                assert (rel["predicate"], rel["source"], rel["score"]) == (
                    expected.predicate, expected.source, expected.score
                )
                if rel["predicate"] == "left of":  # the geometry the fixture used, read from the exported boxes
                    assert subject[0] + subject[2] <= obj[0]
            n_relations += len(got)
    assert n_relations > 0


def test_yolo_labels_read_back(exported: tuple[Path, TaskSpec, list[Sample]]) -> None:
    out, _, _ = exported
    for split in ("train", "val"):
        coco = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        for image in coco["images"]:
            lines = (out / "yolo" / "labels" / split / f"{image['sample_id']}.txt").read_text().splitlines()
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            assert [int(line.split()[0]) for line in lines] == [a["category_id"] - 1 for a in anns]


def test_datasets_loads_the_hf_export_with_its_semantic_column(
    exported: tuple[Path, TaskSpec, list[Sample]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    from synthloop.tools.export.hf import hf_features

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, spec, samples = exported
    loaded = datasets.load_dataset(str(out / "hf"), cache_dir=str(tmp_path / "cache"), features=hf_features(spec))
    for split in ("train", "val"):
        rows = loaded[split]
        assert rows.num_rows == len(_split_samples(samples, split))
        for row in rows:
            with Image.open(out / "semantic" / split / f"{row['sample_id']}.png") as reference:
                assert np.array_equal(np.asarray(row["semantic"]), np.asarray(reference))
            assert row["semantic"].size == row["image"].size


def test_task_outputs_follow_the_spec_tasks(tmp_path: Path) -> None:
    export_all(tmp_path, make_spec(formats=("coco",), tasks=("detection",)), make_samples(tmp_path, rich=True))
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert not {w for w in written if w.startswith(("semantic/", "voc/", "hf/", "yolo/"))}
    assert not {w for w in written if w.startswith("annotations/") and not w.startswith("annotations/instances_")}
    assert validate_dataset(tmp_path) == []


def test_same_samples_give_the_same_bytes(tmp_path: Path) -> None:
    spec = make_spec(formats=FORMATS, tasks=ALL_TASKS)
    snapshots = []
    for name in ("a", "b"):
        out = tmp_path / name
        export_all(out, spec, make_samples(out, rich=True), card=False)
        snapshots.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    del snapshots[0][Path("yolo/data.yaml")], snapshots[1][Path("yolo/data.yaml")]  # absolute path inside
    assert snapshots[0] == snapshots[1]


@pytest.mark.parametrize(
    ("update", "match"),
    [
        ({"referring": [ReferringExpression(instance=9, sentences=["the ninth"])]}, "referring expression"),
        ({"relations": [Relation(subject=0, predicate="near", object=9)]}, "relation"),
    ],
)
def test_an_annotation_pointing_outside_its_instances_is_refused(tmp_path: Path, update: dict, match: str) -> None:
    sample = make_samples(tmp_path, 3, rich=True)[2]
    broken = sample.model_copy(update={"annotation": Annotation(**{**sample.annotation.model_dump(), **update})})
    with pytest.raises(ValueError, match=match):
        export_all(tmp_path, make_spec(formats=("coco",), tasks=ALL_TASKS), [broken], card=False)
