"""`synthloop chat`: scripted terminal sessions (one answer per line on stdin) and the shared reply helpers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers_cli import synthloop

from synthloop.agent.chat import guarded_reviser, interpret_reply, new_run_dir, spec_changes
from synthloop.agent.web.safety import RUN_ID

TESTS_DIR = Path(__file__).resolve().parent


def chat(stdin: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"SYNTHLOOP_PLANNER": "scripted_planner:make_planner",
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    return synthloop("chat", *args, stdin=stdin, cwd=cwd, env=env)


def test_a_piped_session_produces_a_valid_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = chat("cups and plates\nyes\n", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "> cups and plates" in result.stdout and "objects    cup ×1–2, plate ×0–2" in result.stdout
    assert "kept 6/6 images" in result.stdout and f"COCO       {out}/annotations/" in result.stdout
    check = synthloop("validate", str(out))
    assert check.returncode == 0, check.stdout
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6


def test_question_then_edits_then_go(tmp_path: Path) -> None:
    script = "some images\nyes\ncups\nmake it 3 with forks and yolo\n\ngo\n"
    result = chat(script, "--seed", "9", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout
    assert "Which objects should the images contain?" in lines
    assert "answer the question first" in lines  # "yes" to an open question is not an answer
    assert "Changed: formats coco → coco, yolo; n_images 6 → 3; objects +fork" in lines
    assert "type an answer, 'yes' to start, or 'cancel'" in lines  # the empty line
    (run_dir,) = (tmp_path / "runs").iterdir()  # default: a new folder under ./runs/
    assert RUN_ID.fullmatch(run_dir.name) and run_dir.name.endswith("-some-images")
    spec = json.loads((run_dir / "spec.json").read_text())
    assert (spec["n_images"], spec["seed"], spec["formats"]) == (3, 9, ["coco", "yolo"])
    assert (run_dir / "yolo" / "data.yaml").is_file()


@pytest.mark.parametrize("script", ["", "cups\n", "cups\ncancel\n", "cancel\n"])
def test_end_of_input_or_cancel_stops_cleanly(tmp_path: Path, script: str) -> None:
    result = chat(script, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("cancelled: nothing generated") and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "images").exists()


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    for args, needle in ((["--n", "0"], "--n"), (["--out", str(tmp_path / "full")], "not a new or empty")):
        result = chat("cups\nyes\n", *args, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "full" / "x").read_text() == "keep me"


@pytest.mark.parametrize(
    ("text", "questions", "expected"),
    [
        ("yes", [], {"action": "approve"}),
        ("Go!", [], {"action": "approve"}),
        ("cancel", ["Which?"], {"action": "cancel"}),
        ("make it 300", [], {"action": "message", "text": "make it 300"}),
        ("cups", ["Which?"], {"action": "answer", "text": "cups"}),
        ("yes", ["Which?"], None),
        ("   ", [], None),
    ],
)
def test_interpret_reply(text: str, questions: list[str], expected: dict | None) -> None:
    assert interpret_reply(text, {"questions": questions}).reply == expected


def test_spec_changes_and_run_dirs(tmp_path: Path) -> None:
    old = {"n_images": 6, "objects": [{"name": "cup"}], "formats": ["coco"], "request": "a"}
    new = {"n_images": 300, "objects": [{"name": "cup"}, {"name": "truck"}], "formats": ["yolo"], "request": "b"}
    assert spec_changes(old, new) == ["formats coco → yolo", "n_images 6 → 300", "objects +truck"]
    first = new_run_dir(tmp_path, "200 Kitchen scenes: cups & plates!", now=0)
    first.mkdir()
    second = new_run_dir(tmp_path, "200 Kitchen scenes: cups & plates!", now=0)
    assert first.name.endswith("-200-kitchen-scenes-cups-plates") and second.name == first.name + "-2"
    assert RUN_ID.fullmatch(first.name) and RUN_ID.fullmatch(new_run_dir(tmp_path, "").name)


def test_a_failing_edit_keeps_the_spec_and_says_why() -> None:
    said: list[str] = []

    def broken(spec: object, message: str) -> object:
        raise RuntimeError("endpoint down")

    revise = guarded_reviser(broken, said.append)
    assert revise("SPEC", "make it 3") == "SPEC"
    assert said == ["could not apply that change (endpoint down); the spec is unchanged"]
