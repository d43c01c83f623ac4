"""Hostile and broken input on the command line: one `error:` line and exit 2 (or, for `validate`, defects and
exit 1), never a traceback; no number silently reinterpreted; nothing overwritten; large runs estimated first.

Each case below gave a traceback, a silent reinterpretation or an overwrite on 9ef6410 (see issue 12).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SPEC = {"objects": [{"name": "cup", "min_count": 1, "max_count": 2}], "n_images": 3, "width": 96, "height": 96,
        "formats": ["coco", "yolo", "voc", "hf"], "tasks": ["detection", "instance_segmentation"], "seed": 4}
DEEP = 200_000


def synthloop(*args: str | bytes, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHLOOP_")}
    environment["SYNTHLOOP_LLM_BASE_URL"] = "http://127.0.0.1:9/v1"  # the rules plan these; no LLM is started
    return subprocess.run([sys.executable, "-m", "synthloop.agent.cli", *args], capture_output=True, timeout=600,
                          input=stdin, env=environment, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (result.stdout, stderr)
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    result = synthloop("run", str(spec), "--out", str(root / "out"))
    assert result.returncode == 0, result.stderr
    return root / "out"


def copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


# --- text that is not UTF-8, specs nested 200k deep --------------------------------------------------------------


def test_request_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    one_error_line(synthloop("plan", b"cups \xff\xfe and plates", "--json"), "not valid UTF-8")
    one_error_line(synthloop("generate", b"cups \xff and plates", "--out", str(tmp_path / "o"), "--yes"),
                   "not valid UTF-8")
    one_error_line(synthloop("chat", "--out", str(tmp_path / "c"), stdin=b"cups \xff\xfe and plates\nyes\n"),
                   "not valid UTF-8")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_spec_nested_200k_deep(tmp_path: Path, suffix: str) -> None:
    deep = tmp_path / f"deep{suffix}"
    deep.write_text('{"objects": ' + "[" * DEEP + "]" * DEEP + "}")
    one_error_line(synthloop("run", str(deep), "--out", str(tmp_path / "o")), "nested too deeply")
    config = tmp_path / f"config{suffix}"
    config.write_text('{"llm": ' + "[" * DEEP + "]" * DEEP + "}")
    one_error_line(synthloop("run", str(deep), "--out", str(tmp_path / "o"), "--config", str(config)))
    assert not (tmp_path / "o").exists()


# --- validate on damaged annotation files ------------------------------------------------------------------------


def _damage_images(data: dict) -> None:
    data["images"][0]["width"] = str(data["images"][0]["width"])
    data["images"][1]["height"] = None
    data["images"][2]["width"] = True


@pytest.mark.parametrize("damage", [
    _damage_images,
    lambda d: d["images"].__setitem__(0, "an image"),
    lambda d: d["images"][0].__setitem__("id", [1]),
    lambda d: d["images"][0].__setitem__("file_name", 7),
    lambda d: d["annotations"][0].__setitem__("bbox", "0 0 10 10"),
    lambda d: d["annotations"][0].__setitem__("segmentation", {"counts": 5}),
    lambda d: d["annotations"][0].__setitem__("image_id", {"x": 1}),
    lambda d: d.__setitem__("categories", [{"id": "one", "name": 3}]),
    lambda d: d.__setitem__("annotations", {"not": "a list"}),
])
def test_validate_reports_damaged_fields_as_defects(finished_run: Path, tmp_path: Path, damage) -> None:
    out = copy_run(finished_run, tmp_path / "out")
    coco = out / "annotations" / "instances_train.json"
    data = json.loads(coco.read_text())
    damage(data)
    coco.write_text(json.dumps(data))
    result = synthloop("validate", str(out))
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in stderr, stderr
    assert b"defect: annotations/instances_train.json" in result.stdout


def test_validate_names_the_string_width(finished_run: Path, tmp_path: Path) -> None:
    out = copy_run(finished_run, tmp_path / "out")
    coco = out / "annotations" / "instances_train.json"
    data = json.loads(coco.read_text())
    _damage_images(data)
    coco.write_text(json.dumps(data))
    stdout = synthloop("validate", str(out)).stdout.decode()
    assert "width '96' is not a positive integer" in stdout and "height None" in stdout and "width True" in stdout
    assert "orphan image" not in stdout  # the images of an unusable file are not reported one by one


def test_validate_an_annotation_file_nested_200k_deep(finished_run: Path, tmp_path: Path) -> None:
    out = copy_run(finished_run, tmp_path / "out")
    (out / "annotations" / "instances_train.json").write_text("[" * DEEP + "]" * DEEP)
    result = synthloop("validate", str(out))
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"instances_train.json: unreadable JSON" in result.stdout


# --- resume of a damaged run ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "needle"), [
    ("{not json", "cannot read"),
    ("[1, 2]", "corrupt"),
    ('{"config": {}}', "no thread id"),
    ('{"thread_id": "t", "config": {"batch_size": "many"}}', "batch_size"),
    ('{"thread_id": "t", "config": ' + "[" * DEEP + "]" * DEEP + "}", "cannot read"),
])
def test_resume_with_a_corrupt_run_file(finished_run: Path, tmp_path: Path, content: str, needle: str) -> None:
    out = copy_run(finished_run, tmp_path / "out")
    (out / ".work" / "run.json").write_text(content)
    one_error_line(synthloop("resume", str(out)), needle)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "blob", "type"])
def test_resume_with_a_damaged_checkpoint(finished_run: Path, tmp_path: Path, damage: str) -> None:
    out = copy_run(finished_run, tmp_path / "out")
    path = out / ".work" / "checkpoints.sqlite"
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        with sqlite3.connect(path) as connection:
            if damage == "blob":
                connection.execute("UPDATE checkpoints SET checkpoint = randomblob(200)")
            else:
                connection.execute("UPDATE checkpoints SET type = 'bogus'")
    manifest = (out / "manifest.jsonl").read_bytes()
    one_error_line(synthloop("resume", str(out)), "checkpoint", "cannot be resumed")
    assert (out / "manifest.jsonl").read_bytes() == manifest


# --- outputs are never overwritten; dataset paths stay in their roots --------------------------------------------


def test_critique_does_not_overwrite_without_force(finished_run: Path, tmp_path: Path) -> None:
    coco = finished_run / "annotations" / "instances_train.json"
    images = finished_run / "images" / "train"
    report = tmp_path / "audit.jsonl"
    report.write_text("my notes\n")
    one_error_line(synthloop("critique", str(coco), "--images", str(images), "--out", str(report)),
                   "already exists", "--force")
    assert report.read_text() == "my notes\n"
    forced = synthloop("critique", str(coco), "--images", str(images), "--out", str(report), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(report.read_text().splitlines()) == len(json.loads(coco.read_text())["images"])


@pytest.mark.parametrize("command", [["eval", "critic-defects", "--n", "1"], ["eval", "labels", "--n", "1"],
                                     ["eval", "critic", "labels.jsonl", "--critique", "c.jsonl"]])
def test_eval_reports_are_not_overwritten_without_force(tmp_path: Path, command: list[str]) -> None:
    report = tmp_path / "report.json"
    report.write_text("earlier results\n")
    one_error_line(synthloop(*command, "--out", str(report), cwd=tmp_path), "already exists", "--force")
    assert report.read_text() == "earlier results\n"


@pytest.mark.parametrize("command", [["eval", "critic-defects", "--n", "1", "--critique-check"],
                                     ["eval", "utility", "--out"], ["arena", "spec.yaml", "--out"]])
def test_output_folders_that_are_files_are_one_error(tmp_path: Path, command: list[str]) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("mine\n")
    one_error_line(synthloop(*command, str(existing), cwd=tmp_path), "must be a new or empty directory")
    assert existing.read_text() == "mine\n"


def test_critique_opens_no_file_outside_the_image_folder(finished_run: Path, tmp_path: Path) -> None:
    images = tmp_path / "dataset" / "images"
    images.mkdir(parents=True)
    source = sorted((finished_run / "images" / "train").glob("*.png"))[0]
    (images / "inside.png").write_bytes(source.read_bytes())
    (tmp_path / "secret.png").write_bytes(source.read_bytes())  # readable, a valid image: only the path is wrong
    (images / "link.png").symlink_to(tmp_path / "secret.png")
    names = ["inside.png", "../../secret.png", str(tmp_path / "secret.png"), "link.png", "../../../../etc/hostname"]
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [{"id": i, "file_name": n, "width": 96, "height": 96}
                                           for i, n in enumerate(names)], "annotations": [], "categories": []}))
    report = tmp_path / "audit.jsonl"
    result = synthloop("critique", str(coco), "--images", str(images), "--out", str(report))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert "leads outside" not in " ".join(rows[0]["reasons"])
    for row in rows[1:]:
        assert row["decision"] == "reject" and "leads outside the image folder" in row["reasons"][0], row
        assert list(row["judges"]) == ["audit.image"]  # judged on nothing: the file was not read


# --- numbers are never silently reinterpreted --------------------------------------------------------------------


@pytest.mark.parametrize(("request_text", "needle"), [
    ("10^12 images of cats", "'10^12' as a power"),
    ("1e12 images of cats", "'1e12' as a power"),
    ("200 images of cats at -256x-256", "-256x-256"),
    ("200 images of cats, -512px", "-512x-512"),
])
def test_odd_numbers_become_questions(tmp_path: Path, request_text: str, needle: str) -> None:
    plan = synthloop("plan", request_text, "--json")
    assert plan.returncode == 0, plan.stderr
    spec = json.loads(plan.stdout)
    assert any(needle in q["text"] for q in spec["questions"]), spec["questions"]
    assert spec["n_images"] != 12
    one_error_line(synthloop("generate", request_text, "--out", str(tmp_path / "o"), "--yes"), "open question",
                   needle)


# --- large runs ---------------------------------------------------------------------------------------------------


def test_a_run_too_large_for_the_disk_is_refused_before_rendering(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "n_images": 1_000_000, "width": 4096, "height": 4096}))
    out = tmp_path / "out"
    result = synthloop("run", str(spec), "--out", str(out))
    one_error_line(result, "free but this run needs about 25.6 TB", "--force")
    assert "estimate: 1,000,000 images of 4096x4096: about 25.6 TB on disk" in result.stderr.decode()
    assert not (out / "images").exists() and (out / ".work" / "run.json").is_file()


def test_estimates_and_the_capacity_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from synthloop.agent import cli
    from synthloop.agent.errors import UserInputError
    from synthloop.tools.types import TaskSpec

    megabytes, seconds = cli.run_estimate(50_000, 512, 512, "compositor")
    assert megabytes == pytest.approx(50_000 * 0.4)
    assert seconds == pytest.approx(50_000 * cli.SECONDS_PER_512_IMAGE["compositor"])
    assert cli.run_estimate(20_000, 1024, 512, "diffusion") == (pytest.approx(16_000.0), None)
    spec = TaskSpec.model_validate({**SPEC, "n_images": 50_000, "width": 512, "height": 512})
    monkeypatch.setattr(cli, "_free_megabytes", lambda path: 15_000.0)
    with pytest.raises(UserInputError, match=r"has 15\.0 GB free but this run needs about 20\.0 GB"):
        cli._capacity_check(tmp_path, "compositor", force=False)(spec)
    cli._capacity_check(tmp_path, "compositor", force=True)(spec)  # --force: the estimate only
    assert f"about {cli._duration(seconds)} with compositor" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_free_megabytes", lambda path: 1e9)
    cli._capacity_check(tmp_path, "compositor", force=False)(spec)
    small = TaskSpec.model_validate(SPEC)
    monkeypatch.setattr(cli, "_free_megabytes", lambda path: 0.0)
    cli._capacity_check(tmp_path, "compositor", force=False)(small)  # small runs: no estimate, no refusal
    assert capsys.readouterr().err.count("estimate:") == 1
