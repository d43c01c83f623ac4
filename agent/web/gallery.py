"""What the gallery shows and what the votes write: samples with the critic's reasons, overlays drawn with the
dataset card's helpers, A/B pairs, human labels and the dataset zip.

Human labels go to `RUN_DIR/human_labels.jsonl`, one vote per line, appended atomically (one `write` on an
O_APPEND descriptor under an exclusive lock), in the format `synthloop eval critic` reads:

    {"image_id": 3, "label": "accept", "split": "train", "sample_id": "000004"}
    {"a": 3, "b": 5, "winner": "tie", "split": "train", "a_sample_id": "000004", "b_sample_id": "000007"}

`image_id`, `a` and `b` are COCO image ids from `annotations/instances_{split}.json` once the run is exported.
COCO ids start at 1 in every split file, so `split` says which file they refer to; the sample ids (which
COCO images carry as `sample_id`) are added as well. Before export there are no COCO ids yet: the votes then
carry the sample id itself (a string such as "000004") in `image_id` / `a` / `b`.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import zipfile
from pathlib import Path
from typing import Any

from synthloop.agent.web.safety import UnsafeRequest, check_sample_name, inside

LABELS_FILE = "human_labels.jsonl"
TILE = 320


def coco_ids(out_dir: Path) -> dict[str, tuple[int, str]]:
    """sample id → (COCO image id, split) from the exported annotation files ({} before export)."""
    found: dict[str, tuple[int, str]] = {}
    for path in sorted((out_dir / "annotations").glob("instances_*.json")):
        split = path.stem.removeprefix("instances_")
        try:
            images = json.loads(path.read_text(encoding="utf-8")).get("images", [])
        except (OSError, ValueError):
            continue
        for image in images:
            if "sample_id" in image:
                found[str(image["sample_id"])] = (int(image["id"]), split)
    return found


def _accepted_by(judges: list[str]) -> str:
    """'accepted by rules (geometry, mask box, …)': judge ids grouped by their prefix."""
    groups: dict[str, list[str]] = {}
    for judge in judges:
        prefix, _, name = judge.partition(".")
        groups.setdefault(prefix, []).append(name.replace("_", " "))
    parts = [f"{prefix} ({', '.join(n for n in names if n)})" if any(names) else prefix
             for prefix, names in groups.items()]
    return "accepted by " + "; ".join(parts)


def _kept_files(out_dir: Path) -> list[Path]:
    return sorted((out_dir / ".work" / "kept").glob("*.json"))


def _rejected_files(out_dir: Path) -> list[Path]:
    return sorted((out_dir / ".work" / "rejected").glob("*.json"))


ORIGIN_KEYS = ("asset", "source", "licence", "kind")


def origins(sample: Any) -> dict[str, Any]:
    """Where a sample's objects came from, from its `render_info` (the renderer's provenance): per layout object
    its class with the asset id, source, licence and kind when the renderer recorded them (copy_paste does), the
    background's source, and the reference images a renderer used (diffusion's IP-Adapter)."""
    info = sample.render_info or {}
    recorded = info.get("objects") if isinstance(info.get("objects"), list) else []
    layout = sample.layout.objects if sample.layout is not None else []
    objects = []
    for index, row in enumerate(recorded):
        if not isinstance(row, dict):
            continue
        category = layout[index].category if index < len(layout) and len(recorded) == len(layout) else ""
        objects.append({"category": row.get("category", category),
                        **{key: str(row[key]) for key in ORIGIN_KEYS if row.get(key) is not None}})
    background = info.get("background") if isinstance(info.get("background"), dict) else {}
    references = info.get("references")
    return {"objects": objects, "background": str(background.get("source", "")),
            "background_file": Path(str(background["path"])).name if background.get("path") else "",
            "references": references if isinstance(references, list | dict | str) else None}


def _kept_entry(run_id: str, sample: Any, ids: dict[str, tuple[int, str]]) -> dict[str, Any]:
    reasons = [f"{v.judge}: {r}" for v in sample.verdicts for r in v.reasons]
    if not reasons and sample.verdicts:
        reasons = [_accepted_by([v.judge for v in sample.verdicts])]
    coco = ids.get(sample.id)
    return {
        "name": sample.id, "sample_id": sample.id, "split": sample.split, "kind": "kept", "decision": "accept",
        "image_id": coco[0] if coco else None, "reasons": reasons,
        "objects": len(sample.annotation.instances) if sample.annotation else 0,
        "url": f"/api/runs/{run_id}/overlay/kept/{sample.id}.png", "origins": origins(sample),
    }


def list_samples(out_dir: Path, run_id: str, kind: str, offset: int = 0, limit: int = 60) -> dict[str, Any]:
    """One page of kept or rejected samples with their reasons, and the total count."""
    from synthloop.tools.types import Sample

    offset, limit = max(0, offset), max(1, min(limit, 200))
    if kind == "kept":
        files = _kept_files(out_dir)
        ids = coco_ids(out_dir)
        page = [_kept_entry(run_id, Sample.model_validate_json(p.read_text(encoding="utf-8")), ids)
                for p in files[offset:offset + limit]]
    elif kind == "rejected":
        files = _rejected_files(out_dir)
        page = []
        for path in files[offset:offset + limit]:
            row = json.loads(path.read_text(encoding="utf-8"))
            page.append({
                "name": path.stem, "sample_id": row["id"], "split": "", "kind": "rejected", "decision": "reject",
                "attempt": row.get("attempt", 0), "image_id": None, "reasons": row.get("reasons", []),
                "url": f"/api/runs/{run_id}/overlay/rejected/{path.stem}.png",
            })
    else:
        raise UnsafeRequest(f"unknown sample kind {kind[:20]!r} (kept or rejected)")
    return {"kind": kind, "total": len(files), "offset": offset, "samples": page}


def _class_index(out_dir: Path, names: list[str]) -> dict[str, int]:
    try:
        spec_names = [o["name"] for o in json.loads((out_dir / "spec.json").read_text())["objects"]]
    except (OSError, ValueError, KeyError):
        spec_names = []
    order = list(dict.fromkeys([*spec_names, *names]))
    return {name: i for i, name in enumerate(order)}


def _rejected_as_sample(row: dict[str, Any]) -> Any:
    """A rejected attempt as a Sample whose instances are its layout boxes (rejects carry no annotation)."""
    from synthloop.tools.types import Annotation, Instance, Layout, Sample

    layout = Layout.model_validate(row["layout"])
    instances = []
    for obj in layout.objects:
        x0, y0, x1, y1 = obj.box
        w, h = (x1 - x0) * layout.width, (y1 - y0) * layout.height
        instances.append(Instance(category=obj.category, bbox=(x0 * layout.width, y0 * layout.height, w, h),
                                  area=max(1, round(w * h)), source="layout"))
    return Sample(id=row["id"], index=row.get("index", 0), attempt=row.get("attempt", 0), seed=row.get("seed", 0),
                  split="rejected", image_path=row["image_path"], width=layout.width, height=layout.height,
                  layout=layout, annotation=Annotation(instances=instances))


def overlay_png(out_dir: Path, kind: str, name: str) -> bytes:
    """A sample drawn with its boxes, mask outlines and class labels (the dataset card's `draw_tile`)."""
    from synthloop.tools.export.card import draw_tile
    from synthloop.tools.io import encode_png
    from synthloop.tools.types import Sample

    check_sample_name(name)
    if kind == "kept":
        record = inside(out_dir, ".work", "kept", f"{name}.json")
        if not record.is_file():
            raise UnsafeRequest(f"no kept sample {name}", 404)
        sample = Sample.model_validate_json(record.read_text(encoding="utf-8"))
    elif kind == "rejected":
        record = inside(out_dir, ".work", "rejected", f"{name}.json")
        if not record.is_file():
            raise UnsafeRequest(f"no rejected sample {name}", 404)
        sample = _rejected_as_sample(json.loads(record.read_text(encoding="utf-8")))
    else:
        raise UnsafeRequest(f"unknown sample kind {kind[:20]!r}", 404)
    inside(out_dir, sample.image_path)  # the recorded image path must stay inside the run folder too
    names = [i.category for i in (sample.annotation.instances if sample.annotation else [])]
    return encode_png(draw_tile(out_dir, sample, _class_index(out_dir, names), tile=TILE), compress_level=1)


def random_pair(out_dir: Path, run_id: str, rng: random.Random | None = None) -> dict[str, Any]:
    """Two different kept samples of one split, in random order, for an A/B vote."""
    from synthloop.tools.types import Sample

    rng = rng or random.Random()
    samples = [Sample.model_validate_json(p.read_text(encoding="utf-8")) for p in _kept_files(out_dir)]
    by_split: dict[str, list[Any]] = {}
    for sample in samples:
        by_split.setdefault(sample.split, []).append(sample)
    pools = [group for group in by_split.values() if len(group) >= 2]
    if not pools:
        raise UnsafeRequest("A/B needs at least two kept samples of one split", 409)
    pool = rng.choices(pools, weights=[len(p) for p in pools])[0]
    a, b = rng.sample(pool, 2)
    ids = coco_ids(out_dir)
    return {"a": _kept_entry(run_id, a, ids), "b": _kept_entry(run_id, b, ids)}


def _kept_sample(out_dir: Path, name: str) -> Any:
    from synthloop.tools.types import Sample

    record = inside(out_dir, ".work", "kept", f"{check_sample_name(name)}.json")
    if not record.is_file():
        raise UnsafeRequest(f"no kept sample {name}", 404)
    return Sample.model_validate_json(record.read_text(encoding="utf-8"))


def label_row(out_dir: Path, vote: dict[str, Any]) -> dict[str, Any]:
    """The labels-file line for a vote from the browser: {"sample", "label"} or {"a", "b", "winner"}."""
    ids = coco_ids(out_dir)

    def image_id(sample: Any) -> int | str:
        return ids[sample.id][0] if sample.id in ids else sample.id

    if "label" in vote:
        if vote["label"] not in ("accept", "reject"):
            raise UnsafeRequest("label must be accept or reject")
        sample = _kept_sample(out_dir, str(vote.get("sample", "")))
        return {"image_id": image_id(sample), "label": vote["label"], "split": sample.split, "sample_id": sample.id}
    if vote.get("winner") not in ("a", "b", "tie"):
        raise UnsafeRequest("winner must be a, b or tie")
    a, b = _kept_sample(out_dir, str(vote.get("a", ""))), _kept_sample(out_dir, str(vote.get("b", "")))
    if a.id == b.id or a.split != b.split:
        raise UnsafeRequest("an A/B vote needs two different samples of one split")
    return {"a": image_id(a), "b": image_id(b), "winner": vote["winner"], "split": a.split,
            "a_sample_id": a.id, "b_sample_id": b.id}


def append_label(out_dir: Path, row: dict[str, Any]) -> Path:
    """Append one JSON line atomically: a single write on an O_APPEND descriptor under an exclusive lock."""
    path = inside(out_dir, LABELS_FILE)
    data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return path


def count_labels(out_dir: Path) -> int:
    """Votes in the run's labels file."""
    path = out_dir / LABELS_FILE
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def zip_dataset(out_dir: Path, dest: Path) -> Path:
    """Write the exported dataset as a zip to `dest` (everything but the hidden work folder)."""
    if not (out_dir / "manifest.jsonl").is_file():
        raise UnsafeRequest("the dataset is not exported yet", 409)
    root = out_dir.resolve()
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if rel.parts[0] == ".work" or path.is_symlink() or not path.is_file():
                continue
            archive.write(path, f"{root.name}/{rel.as_posix()}")
    return dest
