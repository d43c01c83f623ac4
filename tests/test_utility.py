"""`synthloop eval utility` on a tiny setting (a few images, 1 epoch, generated cut-outs): the report's structure,
the evaluation path (GT-as-predictions scores 1.0; bootstrap re-accumulation equals COCOeval), the injected
defects and the critic filter, checkpoints and one-line errors. No trained model's mAP is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from assetdata import BLUE, RED, make_assets
from helpers_cli import synthloop
from PIL import Image

from synthloop.evals.utility.assets import UtilityError, split_assets
from synthloop.evals.utility.coco_eval import (
    evaluate_predictions,
    export_parts,
    load_coco_set,
    map_of_images,
)
from synthloop.evals.utility.data import corrupt_export
from synthloop.evals.utility.detector import TrainSettings, build_model, load_checkpoint
from synthloop.evals.utility.report import CARD_HEADING, format_report, refresh_card_section, write_report
from synthloop.evals.utility.run import COMPARISONS, UtilitySettings, run_utility

CLASSES = ("cup", "plate")
GREEN = (30, 200, 60)


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_assets(tmp_path_factory.mktemp("cutouts"), {
        "cup": [("ellipse", RED), ("ellipse", BLUE), ("ellipse", GREEN)],
        "plate": [("square", RED), ("square", BLUE), ("triangle", GREEN)]})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, cutouts: Path):
    settings = UtilitySettings(classes=CLASSES, n_train=8, n_test=6, n_reference=6, size=64, seeds=(0, 1),
                               train=TrainSettings(epochs=1, batch_size=4), rounds=20, best_of_n=2,
                               assets_dir=cutouts)
    work = tmp_path_factory.mktemp("utility")
    events: list[str] = []
    return settings, work, run_utility(settings, work, on_event=events.append), events


def test_the_pipeline_reports_every_arm_seed_and_comparison(tiny) -> None:
    _, _, report, events = tiny
    arms = ["copy_paste", "shapes", "corrupted", "filtered", "anchored", "best_of_n"]
    assert list(report.arms) == arms, "no real training data: no synthetic-vs-none arms"
    assert set(report.comparisons) == set(COMPARISONS) - {"synthetic_vs_none"}
    for name, arm in report.arms.items():
        assert set(arm.map_by_seed) == set(arm.ap50_by_seed) == {0, 1}
        assert all(0.0 <= v <= 1.0 for v in [*arm.map_by_seed.values(), *arm.ap50_by_seed.values()])
        estimate = report.estimates[name]
        assert estimate["map"] == pytest.approx(np.mean(list(arm.map_by_seed.values())))
        assert 0.0 <= estimate["low"] <= estimate["high"] <= 1.0
    assert report.arms["copy_paste"].n_images == report.arms["shapes"].n_images == 8
    assert report.arms["filtered"].n_images <= report.arms["corrupted"].n_images == 8
    for key, comparison in report.comparisons.items():
        a, b = COMPARISONS[key][:2]
        assert (comparison["a"], comparison["b"]) == (a, b)
        assert comparison["difference"] == pytest.approx(report.estimates[a]["map"] - report.estimates[b]["map"])
        assert comparison["low"] <= comparison["high"]
        assert comparison["separated"] == (comparison["low"] > 0 or comparison["high"] < 0)
    assert "lost" in report.comparisons["filtered_vs_unfiltered"]
    assert any("badly annotated" in n for n in report.arms["corrupted"].notes)
    assert any("critic rejected" in n for n in report.arms["filtered"].notes)
    assert report.test == {"source": "held-out composites", "n_images": 6, "classes": list(CLASSES),
                           "n_objects": report.test["n_objects"]}
    assert any(e.startswith("trained on shapes, seed 1: mAP") for e in events)


def test_the_test_set_shows_only_held_out_cut_outs(tiny) -> None:
    _, work, _, _ = tiny
    split = json.loads((work / "assets" / "split.json").read_text())
    for name in CLASSES:
        train = {a["id"] for a in split["train"][name]}
        held = {a["id"] for a in split["held_out"][name]}
        assert train and held and not train & held
    renderer = {arm: json.loads((work / "runs" / arm / ".work" / "run.json").read_text())["config"]["renderer"]
                for arm in ("test", "copy_paste", "anchored", "best_of_n")}
    assert renderer["test"]["assets_dir"] == str(work / "assets" / "held_out")
    assert all(renderer[arm]["assets_dir"] == str(work / "assets" / "train") for arm in renderer if arm != "test")
    assert all(r["sources"] == ["user"] for r in renderer.values()), "no other cut-outs can slip in"


def test_report_files_plot_and_card_section(tiny, tmp_path: Path) -> None:
    _, work, report, _ = tiny
    text = format_report(report)
    assert "copy_paste_vs_shapes" in text and "bad samples cost" in text and "mAP@[.5:.95]" in text
    paths = write_report(report, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert set(saved) >= {"settings", "test", "arms", "estimates", "comparisons", "seconds"}
    with Image.open(paths["plot"]) as plot:
        assert plot.size[0] > 400 and plot.size[1] > 100
    card = refresh_card_section(work / "runs" / "copy_paste", report, paths["plot"])
    assert card is not None and (card.parent / "utility.png").is_file()
    refresh_card_section(work / "runs" / "copy_paste", report, paths["plot"])
    body = card.read_text()
    assert body.count(CARD_HEADING) == 1 and "| copy_paste_vs_shapes |" in body


def test_gt_as_predictions_scores_one_through_the_evaluation_path(tiny) -> None:
    _, work, _, _ = tiny
    test = load_coco_set(export_parts(work / "runs" / "test"), CLASSES)
    rows = [{"image_id": a["image_id"], "label": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in test.gt["annotations"]]
    evaluation = evaluate_predictions(test.gt, rows)
    assert evaluation.stats_map == pytest.approx(1.0) and evaluation.stats_ap50 == pytest.approx(1.0)
    assert map_of_images(evaluation, range(evaluation.n_images)) == pytest.approx((1.0, 1.0))
    assert evaluate_predictions(test.gt, []).stats_map == pytest.approx(0.0)


def test_bootstrap_reaccumulation_equals_cocoeval_on_any_subset(tiny) -> None:
    _, work, _, _ = tiny
    test = load_coco_set(export_parts(work / "runs" / "test"), CLASSES)
    rng = np.random.default_rng(0)
    rows = []
    for a in test.gt["annotations"]:
        x, y, w, h = a["bbox"]
        rows.append({"image_id": a["image_id"], "label": a["category_id"] if rng.random() < 0.7 else 1,
                     "bbox": [x + rng.normal(0, 2), y + rng.normal(0, 2), w, h], "score": float(rng.random())})
        rows.append({"image_id": a["image_id"], "label": 2, "bbox": [1.0, 1.0, 10.0, 12.0], "score": 0.3})
    evaluation = evaluate_predictions(test.gt, rows)
    assert map_of_images(evaluation, range(evaluation.n_images)) == pytest.approx(
        (evaluation.stats_map, evaluation.stats_ap50))
    subset = [0, 2, 3]
    ids = {test.images[i].image_id for i in subset}
    sub_gt = {**test.gt, "images": [i for i in test.gt["images"] if i["id"] in ids],
              "annotations": [a for a in test.gt["annotations"] if a["image_id"] in ids]}
    direct = evaluate_predictions(sub_gt, [r for r in rows if r["image_id"] in ids])
    assert map_of_images(evaluation, subset) == pytest.approx((direct.stats_map, direct.stats_ap50))


def test_injected_defects_change_what_they_claim(tiny) -> None:
    _, work, _, _ = tiny
    clean = {a["id"]: a for a in json.loads((work / "runs" / "copy_paste" / "annotations" /
                                            "instances_train.json").read_text())["annotations"]}
    corrupted_file = work / "runs" / "corrupted" / "annotations" / "instances_train.json"
    corrupted = json.loads(corrupted_file.read_text())
    corruptions = json.loads((work / "runs" / "corrupted" / "corruptions.json").read_text())
    pool = json.loads((work / "runs" / "copy_paste" / "annotations" / "instances_train.json").read_text())["images"]
    assert len(pool) == 12, "1.5 × n_train: the critic's rejects are replaced, as in the loop"
    first = {i["id"] for i in pool[:8]}
    assert sum(c["image_id"] in first for c in corruptions) == round(0.2 * 8), "the arm's share is exact"
    assert len(corruptions) == round(0.2 * 8) + round(0.2 * 4), "and so is the replacements'"
    assert {c["defect"] for c in corruptions} <= {"box_shift", "missing_box", "relabel"}, "box defects by default"
    for c in corruptions:
        before = [a for a in clean.values() if a["image_id"] == c["image_id"]]
        after = [a for a in corrupted["annotations"] if a["image_id"] == c["image_id"]]
        if c["defect"] == "missing_box":
            assert before and not after
        elif c["defect"] == "relabel":
            assert [a["category_id"] for a in after] != [a["category_id"] for a in before]
        elif c["defect"] == "box_shift":
            assert [a["bbox"] for a in after] != [a["bbox"] for a in before]


def test_checkpoints_load_where_shapes_fit(tmp_path: Path) -> None:
    import torch

    source = build_model("tiny_fcos", 3, 64)
    torch.save({"model": source.state_dict()}, tmp_path / "ckpt.pt")
    target = build_model("tiny_fcos", 2, 64)
    loaded, total = load_checkpoint(target, tmp_path / "ckpt.pt")
    assert 0 < loaded < total, "the class head (3 vs 2 classes) is left at its initialisation"
    backbone = "backbone.stage8.0.weight"
    assert torch.equal(target.state_dict()[backbone], source.state_dict()[backbone])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UtilityError, match="cannot read checkpoint"):
        load_checkpoint(target, tmp_path / "bad.pt")


def test_bad_settings_are_one_line_errors(tmp_path: Path, cutouts: Path) -> None:
    with pytest.raises(UtilityError, match="unknown comparison"):
        UtilitySettings(comparisons=("nope",)).check()
    with pytest.raises(UtilityError, match="distinct classes"):
        UtilitySettings(classes=("cup", "cup")).check()
    with pytest.raises(UtilityError, match="go together"):
        UtilitySettings(test_coco=tmp_path / "x.json").check()
    with pytest.raises(UtilityError, match="'fork' has 0 library cut-out"):
        split_assets(["fork"], tmp_path / "split", assets_dir=cutouts)
    with pytest.raises(UtilityError, match="defects must be some of"):
        corrupt_export([], tmp_path / "c", share=0.2, seed=0, defects=("box_nudge",))
    result = synthloop("eval", "utility", "--out", str(tmp_path / "o"), "--comparisons", "copy_paste_vs_nothing")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown comparison")
    assert len(result.stderr.strip().splitlines()) == 1


def test_worker_processes_train_the_same_detectors(tiny) -> None:
    from dataclasses import replace

    from synthloop.evals.utility.run import _run_jobs

    settings, work, _, _ = tiny
    data = {"copy_paste": load_coco_set(export_parts(work / "runs" / "copy_paste"), CLASSES)}
    test = load_coco_set(export_parts(work / "runs" / "test"), CLASSES)
    jobs = [("copy_paste", 0), ("copy_paste", 1)]
    here = [(e.stats_map, loss) for e, loss, _ in _run_jobs(jobs, data, test, settings)]
    spread = [(e.stats_map, loss) for e, loss, _ in _run_jobs(jobs, data, test, replace(settings, jobs=2))]
    assert here == spread


def test_the_recovered_share_is_given_only_where_a_loss_is_shown() -> None:
    from synthloop.evals.utility.report import _recovery

    shown = {"lost": 0.02, "lost_interval": [0.01, 0.03], "recovered_share": 0.8, "recovered_interval": [0.5, 1.1]}
    assert "the critic recovers 80% of it [50%, 110%]" in _recovery(shown)
    hidden = {**shown, "lost_interval": [-0.01, 0.03], "recovered_share": None}
    assert _recovery(hidden).endswith("not measurable (no loss shown)")


def test_the_crossfit_pilot_table_reads_the_critic_arms(tiny) -> None:
    from synthloop.evals.utility.crossfit_pilot import MISSING_SCORES, threshold_table

    _, work, _, _ = tiny
    table = threshold_table(work)
    assert {"clean", "relabel_margin", "missing_score"} <= set(table[0])
    assert set(table[0]) - {"clean", "relabel_margin", "missing_score"}, "the injected defects have columns"
    for start in range(0, len(table), len(MISSING_SCORES)):  # stricter thresholds never reject more
        block = table[start:start + len(MISSING_SCORES)]
        for key in set(block[0]) - {"relabel_margin", "missing_score"}:
            values = [e[key] for e in block]
            assert values == sorted(values, reverse=True) and all(0.0 <= v <= 1.0 for v in values)


def test_the_critic_comparison_brings_the_clean_arm_its_loss_is_measured_against() -> None:
    assert UtilitySettings(comparisons=("filtered_vs_unfiltered",)).arms() == ["copy_paste", "corrupted", "filtered"]
    assert UtilitySettings(comparisons=("best_of_n_vs_single",)).arms() == ["copy_paste", "best_of_n"]
