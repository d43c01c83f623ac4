"""Dataset card: card.md with the counts, and the two pictures."""

from __future__ import annotations

from pathlib import Path

from export_testdata import make_samples, make_spec, rejected_rows
from PIL import Image

from synthloop.tools.export.card import reason_counts, size_bucket, write_card


def test_card_reports_counts_and_draws_pictures(tmp_path: Path) -> None:
    spec = make_spec()
    samples = make_samples(tmp_path)
    write_card(tmp_path, spec, samples, rejected_rows(), {"render_s": 1.25, "stop_reason": "done"})
    card = (tmp_path / "card.md").read_text()

    kept = [i for s in samples for i in s.annotation.instances if i.area > 0]
    per_split = {
        split: (
            sum(s.split == split for s in samples),
            sum(i.area > 0 for s in samples if s.split == split for i in s.annotation.instances),
        )
        for split in ("train", "val")
    }
    for split, (n_images, n_instances) in per_split.items():
        assert f"| {split} | {n_images} | {n_instances} |" in card
    assert f"| **total** | {len(samples)} | {len(kept)} |" in card
    for name in spec.class_names:
        total = sum(i.category == name for i in kept)
        assert f"| {name} |" in card and f"| {total} |" in card
    assert "| rules: box # too small | 2 |" in card and "| rules: duplicate | 1 |" in card
    assert "| render_s | 1.250 |" in card and "| stop_reason | done |" in card
    assert "| renderer | test-painter | 8 |" in card
    small = sum(size_bucket(i.area) == "small" for i in kept)
    assert f"| small | {small} |" in card
    assert "![samples](card_samples.png)" in card and "![class balance](card_class_balance.png)" in card

    with Image.open(tmp_path / "card_samples.png") as grid:
        assert grid.width > 4 * 256 and grid.height > 2 * 256  # 8 samples: 4 columns, 2 rows
    with Image.open(tmp_path / "card_class_balance.png") as chart:
        assert chart.width > 300 and chart.height > 3 * 20


def test_card_without_samples_or_rejections(tmp_path: Path) -> None:
    write_card(tmp_path, make_spec(), [], [], None)
    card = (tmp_path / "card.md").read_text()
    assert "| **total** | 0 | 0 |" in card and "No rejected attempts." in card
    assert (tmp_path / "card_samples.png").is_file()


def test_reason_counts_group_numbers_and_accept_other_row_shapes() -> None:
    rows = [{"reasons": ["box 3 too small", "box 12 too small"]}, {"reason": "blurry"}, {}]
    assert reason_counts(rows) == {"box # too small": 2, "blurry": 1, "(no reason given)": 1}


def test_card_reports_what_each_task_delivered(tmp_path: Path) -> None:
    from export_testdata import ALL_TASKS, LOW_AGREEMENT

    spec = make_spec(formats=("coco", "voc"), tasks=ALL_TASKS)
    samples = make_samples(tmp_path, rich=True)
    write_card(tmp_path, spec, samples, [], None)
    card = (tmp_path / "card.md").read_text()

    visible = {s.id: {k for k, i in enumerate(s.annotation.instances) if i.area > 0} for s in samples}
    n_objects = sum(len(v) for v in visible.values())
    n_masked = sum(i.segmentation is not None for s in samples for i in s.annotation.instances if i.area > 0)
    n_captions = sum(len(s.annotation.captions) for s in samples)
    refs = [r for s in samples for r in s.annotation.referring if r.instance in visible[s.id]]
    relations = [
        r for s in samples for r in s.annotation.relations if {r.subject, r.object} <= visible[s.id]
    ]
    with_relations = sum(
        any({r.subject, r.object} <= visible[s.id] for r in s.annotation.relations) for s in samples
    )
    assert f"| detection | `annotations/instances_{{split}}.json` (boxes) | {n_objects} boxes in 8 images |" in card
    assert f"{n_masked}/{n_objects} objects with a mask; {n_objects - n_masked} box only" in card
    assert f"| `annotations/captions_{{split}}.json` | 8/8 images captioned, {n_captions} captions |" in card
    sentences = sum(len(r.sentences) for r in refs)
    referred = sum(len({r.instance for r in s.annotation.referring} & visible[s.id]) for s in samples)
    assert f"{referred}/{n_objects} objects referred to, {sentences} sentences" in card
    assert f"{len(relations)} relations in {with_relations}/8 images" in card
    for heading in ("## Semantic segmentation", "## Captions", "## Referring expressions", "## Scene graph"):
        assert heading in card
    assert f"`s001`: {samples[1].annotation.captions[0]}" in card  # an example caption

    agreements = [i.certificate.agreement for s in samples for i in s.annotation.instances if i.area > 0]
    low = sum(a == LOW_AGREEMENT for a in agreements)
    assert "## Label certificates" in card and f"{len(agreements)}/{n_objects} objects carry a certificate" in card
    assert f"| [0.3, 0.4) | {low} |" in card and f"| [0.9, 1.0] | {len(agreements) - low} |" in card


def test_card_without_task_outputs_or_certificates(tmp_path: Path) -> None:
    write_card(tmp_path, make_spec(tasks=("detection",)), make_samples(tmp_path), [], None)
    card = (tmp_path / "card.md").read_text()
    assert "| detection |" in card and "## What each task delivered" in card
    for absent in ("## Captions", "## Referring expressions", "## Scene graph", "## Semantic", "## Label certificates"):
        assert absent not in card


def test_card_says_where_each_class_came_from_with_licences(tmp_path: Path) -> None:
    """Per-object sources recorded by the renderer (render_info) are counted per class, with licences and the
    number of distinct exemplars; the approved plan's notes and notices are repeated."""
    from synthloop.tools.types import Notice

    samples = make_samples(tmp_path)
    sources = [("tuxpaint", "photo", "GPL-2.0-or-later"), ("openclipart", "drawing", "public domain (CC0)")]
    expected: dict[tuple[str, str, str, str], int] = {}
    exemplars: dict[str, set[str]] = {}
    tagged = []
    for k, sample in enumerate(samples):
        infos = []
        for j, obj in enumerate(sample.layout.objects):
            source, kind, licence = sources[(k + j) % 2]
            asset = f"{source}:{obj.category}-{(k + j) % 3}"
            infos.append({"asset": asset, "source": source, "kind": kind, "licence": licence})
            key = (obj.category, source, kind, licence)
            expected[key] = expected.get(key, 0) + 1
            exemplars.setdefault(obj.category, set()).add(asset)
        tagged.append(sample.model_copy(update={"render_info": {"objects": infos, "difficulty_score": 0.25}}))
    spec = make_spec().model_copy(update={
        "plan_notes": ["box: 3 photos (Tux Paint)"],
        "notices": [Notice(kind="cannot_deliver", text="watercolor", reason="no such effect", about="style")]})
    write_card(tmp_path, spec, tagged, [], None)
    card = (tmp_path / "card.md").read_text()
    for (name, source, kind, licence), n in expected.items():
        assert f"| {name} | {source} | {kind} | {licence} | {n} | {len(exemplars[name])} |" in card
    assert "- box: 3 photos (Tux Paint)" in card
    assert "- cannot deliver: watercolor (no such effect)" in card
    assert f"median 0.25 over {len(tagged)} images" in card
