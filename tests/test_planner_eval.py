"""The planner eval: case files are well formed and cover every field; scoring and the CLI command work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from synthloop.agent.planner import plan_request
from synthloop.evals.planner_eval import DEFAULT_CASE_FILES, Case, load_cases, run_cases, score_case


def test_case_files_have_enough_varied_cases() -> None:
    cases = [c for path in DEFAULT_CASE_FILES for c in load_cases(path)]
    assert len(cases) >= 80 and len({c.id for c in cases}) == len(cases)
    fields = {k for c in cases for k in c.expect}
    assert {"classes", "n_images", "size", "tasks", "formats", "difficulty", "splits", "seed", "scene", "style",
            "attributes", "counts"} <= fields
    assert sum(c.question for c in cases) >= 10 and sum(not c.question for c in cases) >= 60
    assert any(len(load_cases(p)) >= 30 for p in DEFAULT_CASE_FILES[1:])  # a held-out part


def test_scoring_uses_defaults_and_skips_nulls() -> None:
    spec = plan_request("300 images of cats", None)
    case = Case("x", "300 images of cats", {"classes": ["cat"], "n_images": 300})
    scores = score_case(case, spec)
    assert all(scores.values()) and {"size", "tasks", "splits", "seed", "question"} <= set(scores)
    wrong = score_case(Case("y", "", {"classes": ["dog"], "n_images": None}), spec)
    assert wrong["classes"] is False and "n_images" not in wrong
    asked = score_case(Case("z", "", {}, question=True), spec)
    assert asked == {"question": False}  # only the question is scored on a case that needs one


def test_a_crashing_planner_is_reported_not_raised() -> None:
    def broken(request: str):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    report = run_cases("t", [Case("a", "cats", {"classes": ["cat"]})], broken)
    assert report.summary()["errors"] == 1 and report.summary()["fully_right"] == 0.0


def test_cli_eval_planner_without_llm(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "a", "request": "200 images of cats, yolo", "expect": {"classes": ["cat"], '
                     '"n_images": 200, "formats": ["yolo"]}}\n{"id": "b", "request": "make a dataset", '
                     '"question": true, "expect": {}}\n')
    out = subprocess.run([sys.executable, "-m", "synthloop.agent.cli", "eval", "planner", "--no-llm", "--cases",
                          str(cases)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "requests fully right    100.0%" in out.stdout
    assert "question when needed    100.0%" in out.stdout and "median planning time" in out.stdout


def test_followups_are_answers_or_edits_as_the_graph_routes_them() -> None:
    from synthloop.agent.planner import revise_spec

    answered = Case("a", "500 images for detection", {"classes": ["trash bin", "bench"], "n_images": 500},
                    followups=("trash bins and benches",))
    edited = Case("e", "street scenes with cars", {"classes": ["car", "trash bin"], "formats": ["voc"]},
                  followups=("also trash bins", "VOC instead"))
    report = run_cases("t", [answered, edited], lambda r: plan_request(r, None),
                       lambda spec, message: revise_spec(spec, message, None))
    assert [r.fully_right for r in report.results] == [True, True], [r.scores for r in report.results]
    assert report.summary()["dropped_share"] == 0.0


def test_notice_fields_and_dropped_words_are_scored() -> None:
    case = Case("k", "cars with keypoints, TFRecord", {"classes": ["car"], "cannot_deliver": ["keypoints", "tfrecord"],
                                                       "question_source": None})
    spec = plan_request(case.request, None)
    assert score_case(case, spec)["cannot_deliver"] is True
    silent = spec.model_copy(update={"notices": []})
    report = run_cases("t", [case], lambda request: silent)
    assert report.results[0].dropped == ["keypoints", "tfrecord"] and report.summary()["dropped_share"] == 1.0
    language = Case("l", "Erstelle 200 Bilder von Katzen", {"question_source": "language"}, question=True)
    assert all(score_case(language, plan_request(language.request, None)).values())
