"""`synthloop eval critic` metrics against values computed by hand on tiny inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from synthloop.agent.cli import app
from synthloop.evals.critic_agreement import (
    bootstrap,
    cohen_kappa,
    evaluate,
    kendall_tau_b,
    precision_recall,
    run_agreement,
)

POINTWISE = {"1": "reject", "2": "reject", "3": "accept", "4": "accept", "5": "accept", "6": "accept"}
DECISIONS = {"1": "reject", "2": "accept", "3": "reject", "4": "accept", "5": "accept", "6": "accept"}
SCORES = {k: {"accept": 1.0, "reject": 0.0}[v] for k, v in DECISIONS.items()}
PAIRWISE = [("1", "2", "a"), ("3", "4", "b"), ("5", "6", "tie")]


def test_binary_metrics_by_hand() -> None:
    truth, predicted = [1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0]
    # observed 4/6, chance (1/3)(1/3) + (2/3)(2/3) = 5/9  →  κ = (2/3 - 5/9) / (4/9) = 1/4
    assert cohen_kappa(truth, predicted) == pytest.approx(0.25)
    assert precision_recall(truth, predicted) == (0.5, 0.5)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)


def test_kendall_tau_b_by_hand() -> None:
    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # 15 pairs, 7 tied in each; concordant - discordant = 3 - 1  →  τ_b = 2 / sqrt(8 · 8)
    assert kendall_tau_b([0, 1, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]) == pytest.approx(0.25)
    # one tie in x: pairs 3, (n0 - n1)(n0 - n2) = 2 · 3, C - D = 2  →  2 / sqrt(6)
    assert kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(6))
    assert np.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))


def test_evaluate_pointwise_and_pairwise() -> None:
    report = evaluate(POINTWISE, PAIRWISE, DECISIONS, SCORES, rounds=200, seed=3)
    m = report.metrics
    assert m["accuracy"].value == pytest.approx(4 / 6) and m["accuracy"].n == 6
    assert m["cohen_kappa"].value == pytest.approx(0.25)
    assert m["reject_precision"].value == pytest.approx(0.5) and m["reject_recall"].value == pytest.approx(0.5)
    assert m["kendall_tau_pointwise"].value == pytest.approx(0.25)
    # pair (1, 2): judge scores 0 < 1, human picks 1 → 0; pair (3, 4): judge 0 < 1, human picks 4 → 1;
    # the human tie is left out
    assert m["pairwise_agreement"].value == pytest.approx(0.5) and m["pairwise_agreement"].n == 2
    for estimate in m.values():
        if np.isfinite(estimate.low):
            assert estimate.low <= estimate.value + 1e-9 and estimate.value <= estimate.high + 1e-9


def test_judge_matches_give_pairwise_agreement_and_position_consistency() -> None:
    matches = [{"a": "1", "b": "2", "winner": "a", "swapped": False},
               {"a": "1", "b": "2", "winner": "b", "swapped": True},
               {"a": "3", "b": "4", "winner": "b", "swapped": False},
               {"a": "4", "b": "3", "winner": "a", "swapped": True}]
    report = evaluate({}, PAIRWISE, DECISIONS, SCORES, matches=matches, rounds=100)
    assert report.metrics["position_consistency"].value == pytest.approx(0.5)
    assert report.metrics["pairwise_agreement"].value == pytest.approx(0.75)  # (1,2): p = ½; (3,4): b both times


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    values = np.random.default_rng(0).random(50)
    low, high = bootstrap(lambda k: float(values[k].mean()), 50, rounds=300, seed=7)
    assert low <= values.mean() <= high
    assert (low, high) == bootstrap(lambda k: float(values[k].mean()), 50, rounds=300, seed=7)


def test_eval_critic_cli_writes_report_and_plot(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"image_id": int(k), "label": v}) + "\n" for k, v in POINTWISE.items())
                      + json.dumps({"a": 1, "b": 2, "winner": "a"}) + "\n")
    critique = tmp_path / "critique.jsonl"
    critique.write_text("".join(json.dumps({"image_id": int(k), "decision": v, "reasons": [], "scores": {},
                                            "judges": {}}) + "\n" for k, v in DECISIONS.items()))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "critic", str(labels), "--critique", str(critique), "--out", str(out),
                                      "--bootstrap", "100"], standalone_mode=False)
    assert result.exception is None, result.output
    assert "cohen_kappa" in result.output and "0.250" in result.output
    report = json.loads(out.read_text())
    assert report["metrics"]["accuracy"]["value"] == pytest.approx(4 / 6)
    with Image.open(out.with_suffix(".png")) as plot:
        assert plot.size[0] == 640 and plot.size[1] > 360, "metrics panel above the 640 × 360 histogram"


def test_label_errors_name_the_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"image_id": 1, "label": "maybe"}\n')
    critique = tmp_path / "c.jsonl"
    critique.write_text("")
    with pytest.raises(ValueError, match="row 1: label must be"):
        run_agreement(labels, critique)


def test_disagreements_say_what_each_judge_is_for() -> None:
    from synthloop.evals.critic_agreement import AgreementReport, disagreements, format_report

    def row(image_id: int, judges: dict[str, str], reasons: list[str]) -> dict:
        decision = "reject" if any(v != "accept" for v in judges.values()) else "accept"
        return {"image_id": image_id, "decision": decision, "judges": judges, "reasons": reasons}

    rows = [row(1, {"rules.duplicate": "reject", "rules.mask_box": "accept"}, ["rules.duplicate: near duplicate of 7"]),
            row(2, {"rules.duplicate": "reject"}, ["rules.duplicate: exact duplicate of 9"]),
            row(3, {"rules.mask_box": "reject", "rules.duplicate": "accept"}, ["rules.mask_box: IoU 0.10"]),
            row(4, {"rules.mask_box": "accept"}, []), row(5, {"rules.mask_box": "accept"}, [])]
    labels = {"1": "accept", "2": "reject", "3": "reject", "4": "reject", "5": "accept"}
    found = disagreements(labels, rows)
    assert found["critic_only"] == ["1"] and found["human_only"] == ["4"]
    duplicate, mask_box = found["judges"]["rules.duplicate"], found["judges"]["rules.mask_box"]
    assert (duplicate["rejects"], duplicate["confirmed"], duplicate["precision"]) == (2, 1, 0.5)
    assert duplicate["disputed"] == [{"image_id": "1", "reason": "near duplicate of 7"}]
    assert (mask_box["rejects"], mask_box["confirmed"], mask_box["disputed"]) == (1, 1, [])
    assert "near duplicates" in duplicate["purpose"]
    text = format_report(AgreementReport(disagreements=found))
    assert "1 image(s) rejected by the critic but kept by people, 1 kept by the critic but rejected" in text
    assert "rules.duplicate: 2 reject(s), 1 confirmed by people (50%); it is for exact and near duplicates" in text
    assert "disputed: image 1: near duplicate of 7" in text
    assert "rejected by people (no judge checks what they saw): 4" in text


def test_run_dir_agreement_compares_the_run_critic_with_ui_votes(tmp_path: Path) -> None:
    from synthloop.evals.critic_agreement import json_safe, run_dir_agreement

    assert run_dir_agreement(tmp_path).notes == ["the run has no export yet (manifest.jsonl): nothing to compare"]
    ratings = {"000000": 1100.0, "000001": 1000.0, "000002": 900.0}
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(
        {"id": i, "rating": r, "verdicts": [{"judge": "rules.geometry", "decision": "accept", "scores": {}}]}) + "\n"
        for i, r in ratings.items()))
    assert run_dir_agreement(tmp_path).notes == ["no votes yet: vote in the Kept and A/B compare tabs"]
    votes = [{"image_id": 1, "label": "accept", "sample_id": "000000"},
             {"image_id": 2, "label": "accept", "sample_id": "000001"},
             {"image_id": 3, "label": "reject", "sample_id": "000002"},
             {"a": 1, "b": 3, "winner": "a", "a_sample_id": "000000", "b_sample_id": "000002"},
             {"a": 2, "b": 1, "winner": "a", "a_sample_id": "000001", "b_sample_id": "000000"}]
    (tmp_path / "human_labels.jsonl").write_text("".join(json.dumps(v) + "\n" for v in votes))
    report = run_dir_agreement(tmp_path, rounds=50)
    assert report.metrics["accuracy"].value == pytest.approx(2 / 3), "the critic kept all three"
    assert report.metrics["pairwise_agreement"].value == pytest.approx(0.5), "ratings agree on one pair of two"
    assert report.disagreements["human_only"] == ["000002"]
    assert report.metrics["cohen_kappa"].value == pytest.approx(0.0), "keeping everything is chance agreement"
    assert np.isnan(report.metrics["reject_precision"].value), "no reject, no precision of rejects"
    assert json_safe(report.to_dict())["metrics"]["reject_precision"]["value"] is None, "the UI gets null, not NaN"
