"""Streaming export: the disk-backed pieces behave like the in-memory structures they replace, and every file
export_all writes is byte for byte what building it whole gives, whatever the order, chunking or threads."""

from __future__ import annotations

import json
import random
import re
import statistics
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from export_testdata import ALL_TASKS, make_samples, make_spec, rejected_rows

from synthloop.tools.export import records
from synthloop.tools.export.card_stats import ValueHistogram
from synthloop.tools.export.card_tasks import Smallest
from synthloop.tools.export.coco import build_coco
from synthloop.tools.export.records import export_all
from synthloop.tools.export.session import ExportSession
from synthloop.tools.export.streaming import (
    DuplicateKeyError,
    JsonArray,
    NameSet,
    SortedSpool,
    write_json_document,
    write_lines,
)
from synthloop.tools.types import Sample

FORMATS = ("coco", "yolo", "voc", "hf")
TIMING_ROW = re.compile(r"^\| (export_\w+_s|records_s) \| [0-9.]+ \|$", re.MULTILINE)


# --------------------------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
def test_spool_gives_entries_back_in_key_order_whatever_the_arrival(tmp_path: Path, order: str) -> None:
    keys = [f"{k:05d}" for k in range(300)]
    arrival = {"ascending": keys, "descending": keys[::-1], "shuffled": random.Random(3).sample(keys, len(keys))}
    values = {key: json.dumps({"key": key, "text": f"é\u2028{key}\t;"}, ensure_ascii=False) for key in keys}
    with SortedSpool(tmp_path) as spool:
        for key in arrival[order]:
            spool.add(key, values[key])
        assert len(spool) == len(keys)
        assert list(spool.items()) == [(key, values[key]) for key in keys]
        assert list(spool.keys()) == keys  # read twice: reading does not consume


@pytest.mark.parametrize("keys", [["a", "b", "b"], ["b", "a", "b"], ["a", "c", "b", "c"]])
def test_spool_refuses_a_key_given_twice(tmp_path: Path, keys: list[str]) -> None:
    with SortedSpool(tmp_path) as spool, pytest.raises(DuplicateKeyError):
        for key in keys:
            spool.add(key)


def test_spool_refuses_a_value_with_a_newline(tmp_path: Path) -> None:
    with SortedSpool(tmp_path) as spool, pytest.raises(ValueError, match="single line"):
        spool.add("a", "two\nlines")


def test_name_set_answers_membership() -> None:
    names = NameSet()
    assert "x" not in names
    for k in range(1000):
        names.add(f"/out/yolo/labels/train/{k:06d}.txt")
    names.add("/out/yolo/labels/train/000001.txt")
    assert "/out/yolo/labels/train/000999.txt" in names and "/out/yolo/labels/train/001000.txt" not in names
    names.close()


def test_json_documents_are_the_bytes_of_json_dumps(tmp_path: Path) -> None:
    elements = [{"id": 1, "bbox": [0.1, 2.0, 1e-7, 3.5], "name": "café ☕"}, [1, [2]], "x", None, 1.0]
    whole = {"info": {"v": "1.0"}, "images": elements, "annotations": [], "categories": [{"id": 1}]}
    with JsonArray(tmp_path) as images, JsonArray(tmp_path) as annotations:
        for element in elements:
            images.append(element)
        write_json_document(tmp_path / "doc.json", {**whole, "images": images, "annotations": annotations})
        write_json_document(tmp_path / "list.json", images)
    assert (tmp_path / "doc.json").read_text(encoding="utf-8") == json.dumps(whole, ensure_ascii=False) + "\n"
    assert (tmp_path / "list.json").read_text(encoding="utf-8") == json.dumps(elements, ensure_ascii=False) + "\n"
    write_lines(tmp_path / "lines.txt", iter(["a", "b"]))
    assert (tmp_path / "lines.txt").read_text() == "a\nb\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json", "lines.txt", "list.json"], "no temp file left"


def test_value_histogram_median_is_statistics_median_on_the_pixel_grid() -> None:
    rng = random.Random(5)
    for n in (1, 2, 7, 100, 1001):
        values = [rng.randint(1, 300) / rng.choice((1, 2, 4, 8)) for _ in range(n)]
        histogram = ValueHistogram()
        for value in values:
            histogram.add(value)
        assert histogram.median() == statistics.median(values)
        assert (histogram.min, histogram.max, histogram.count) == (min(values), max(values), n)
    values = [rng.uniform(0, 500) for _ in range(999)]  # off the grid: within 1/16 px
    histogram = ValueHistogram()
    for value in values:
        histogram.add(value)
    assert abs(histogram.median() - statistics.median(values)) <= 1 / 16


def test_smallest_keeps_the_first_keys_whatever_the_order() -> None:
    keys = list(range(50))
    random.Random(2).shuffle(keys)
    smallest: Smallest[int, str] = Smallest(3)
    for key in keys:
        smallest.add(key, f"v{key}")
    assert smallest.values() == ["v0", "v1", "v2"]


# --------------------------------------------------------------------------------------------- whole exports


def _tree(root: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "card.md":  # the export's own timings differ from run to run
                data = TIMING_ROW.sub("", data.decode("utf-8")).encode("utf-8")
            files[path.relative_to(root).as_posix()] = data
    return files


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Sample]]:
    out = tmp_path_factory.mktemp("streaming") / "ds"
    samples = make_samples(out, 24, rich=True)
    export_all(out, make_spec(formats=FORMATS, tasks=ALL_TASKS), samples, rejected_rows=rejected_rows(),
               extra={"stop_reason": "done"})
    return out, samples


def _canonical(path: Path) -> str:
    return json.dumps(json.loads(path.read_text(encoding="utf-8")), ensure_ascii=False) + "\n"


def test_every_file_is_the_one_built_whole(reference: tuple[Path, list[Sample]]) -> None:
    out, samples = reference
    spec = make_spec(formats=FORMATS, tasks=ALL_TASKS)
    for split in spec.splits.names():
        in_split = [s for s in samples if s.split == split]
        whole = json.dumps(build_coco(spec, in_split), ensure_ascii=False) + "\n"
        assert (out / "annotations" / f"instances_{split}.json").read_text(encoding="utf-8") == whole
        for kind in ("captions", "refs", "scene_graphs"):
            path = out / "annotations" / f"{kind}_{split}.json"
            assert path.read_text(encoding="utf-8") == _canonical(path), path
    by_id = sorted(samples, key=lambda s: s.id)
    manifest = "".join(json.dumps(s.model_dump(mode="json"), ensure_ascii=False) + "\n" for s in by_id)
    assert (out / "manifest.jsonl").read_text(encoding="utf-8") == manifest
    rows = sorted(rejected_rows(), key=lambda r: (r["index"], r["attempt"], r["id"]))
    assert (out / "rejected.jsonl").read_text() == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    for split in ("train", "val"):
        lines = (out / "hf" / split / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
        ids = [json.loads(line)["sample_id"] for line in lines]
        assert ids == [s.id for s in by_id if s.split == split]
        assert [json.loads(line)["image_id"] for line in lines] == list(range(1, len(ids) + 1))
        first_ann = [json.loads(line)["objects"]["id"][:1] for line in lines]
        coco = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        firsts = {}
        for ann in coco["annotations"]:
            firsts.setdefault(ann["image_id"], [ann["id"]])
        assert first_ann == [firsts.get(k, []) for k in range(1, len(ids) + 1)]


def _generated(samples: list[Sample]) -> Iterator[Sample]:
    yield from sorted(samples, key=lambda s: s.id)


@pytest.mark.parametrize("variant", ["generator", "reversed", "chunk of 5", "threads"])
def test_same_bytes_from_a_generator_in_any_order_chunk_size_or_threads(
    reference: tuple[Path, list[Sample]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    ref_out, _ = reference
    out = tmp_path / "ds"
    samples = make_samples(out, 24, rich=True)
    given = {"generator": _generated(samples), "reversed": list(reversed(samples))}.get(variant, samples)
    if variant == "chunk of 5":
        monkeypatch.setattr(records, "CHUNK", 5)
    spec = make_spec(formats=FORMATS, tasks=ALL_TASKS)
    with ThreadPoolExecutor(3) as pool:
        export_all(out, spec, given, rejected_rows=iter(rejected_rows()), extra={"stop_reason": "done"},
                   executor=pool if variant == "threads" else None)
    got, want = _tree(out), _tree(ref_out)
    here, there = str(out.resolve()).encode(), str(ref_out.resolve()).encode()
    want["yolo/data.yaml"] = want["yolo/data.yaml"].replace(there, here)  # data.yaml holds its absolute path
    assert got.keys() == want.keys()
    assert [name for name in want if got[name] != want[name]] == []


def test_a_sample_given_twice_is_refused(tmp_path: Path) -> None:
    samples = make_samples(tmp_path, 3)
    with pytest.raises(ValueError, match="twice"):
        export_all(tmp_path, make_spec(formats=("coco",)), [*samples, samples[0]], card=False)


# --------------------------------------------------------------------------------------------- export sessions


def _same_tree(out: Path, ref_out: Path) -> list[str]:
    """Names of the files that differ between two exports (data.yaml holds its own absolute path)."""
    got, want = _tree(out), _tree(ref_out)
    here, there = str(out.resolve()).encode(), str(ref_out.resolve()).encode()
    want["yolo/data.yaml"] = want["yolo/data.yaml"].replace(there, here)
    assert got.keys() == want.keys()
    return [name for name in want if got[name] != want[name]]


@pytest.mark.parametrize("background", [False, True])
def test_a_session_fed_as_samples_are_kept_writes_the_bytes_of_export_all(
    reference: tuple[Path, list[Sample]], tmp_path: Path, background: bool
) -> None:
    ref_out, _ = reference
    out = tmp_path / "ds"
    samples = make_samples(out, 24, rich=True)
    random.Random(3).shuffle(samples)  # kept in the order the loop decides them, not by id
    with ThreadPoolExecutor(2) as pool:
        session = ExportSession(out, make_spec(formats=FORMATS, tasks=ALL_TASKS), executor=pool,
                                background=pool if background else None, max_pending=4)
        for sample in samples:
            session.submit(sample)
        session.close(rejected_rows=iter(rejected_rows()), extra={"stop_reason": "done"})
    assert _same_tree(out, ref_out) == []


def test_ratings_given_at_close_are_those_of_rated_samples(tmp_path: Path) -> None:
    spec = make_spec(formats=("coco",))
    rated_out, session_out = tmp_path / "rated", tmp_path / "session"
    ratings = {s.id: 1000.0 + s.index for s in make_samples(rated_out, 6)}
    export_all(rated_out, spec, [s.model_copy(update={"rating": ratings[s.id]})
                                 for s in make_samples(rated_out, 6)], card=False)
    session = ExportSession(session_out, spec, card=False)
    for sample in make_samples(session_out, 6):
        session.add(sample)
    session.close(ratings=ratings)
    assert (session_out / "manifest.jsonl").read_bytes() == (rated_out / "manifest.jsonl").read_bytes()
    assert all(json.loads(line)["rating"] >= 1000 for line in (session_out / "manifest.jsonl").open())


def test_a_failed_background_add_is_raised_to_the_session_user(tmp_path: Path) -> None:
    samples = make_samples(tmp_path, 3)
    with ThreadPoolExecutor(1) as pool:
        session = ExportSession(tmp_path, make_spec(formats=("coco",)), card=False, background=pool)
        session.submit(samples[0])
        session.submit(samples[0])  # the second add of one id fails in the background
        with pytest.raises(ValueError, match="twice"):
            session.close()


def test_a_discarded_session_writes_nothing_more_and_cannot_close(tmp_path: Path) -> None:
    samples = make_samples(tmp_path, 4)
    with ThreadPoolExecutor(1) as pool:
        session = ExportSession(tmp_path, make_spec(formats=("coco",)), card=False, background=pool)
        for sample in samples:
            session.submit(sample)
        session.discard()
    assert not (tmp_path / "manifest.jsonl").exists()
    assert not (tmp_path / "annotations").exists() or not any((tmp_path / "annotations").iterdir())
    with pytest.raises(RuntimeError, match="closed"):
        session.close()
