"""The command line as a user meets it: one-line errors with exit code 2, a dataset that validates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers_cli import synthloop

SPEC = {
    "objects": [{"name": "cup", "min_count": 1, "max_count": 2}, {"name": "plate", "min_count": 0, "max_count": 2}],
    "n_images": 6, "width": 128, "height": 96, "formats": ["coco", "yolo"],
    "tasks": ["detection", "instance_segmentation"], "seed": 11,
}


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


# What would make `--help` slow: libraries the commands load only when they run.
HEAVY_MODULES = ("numpy", "PIL", "cv2", "pycocotools", "langgraph", "openai", "fastapi", "uvicorn", "scipy", "torch",
                 "transformers", "diffusers")


def test_help_loads_no_heavy_library() -> None:
    """`--help` answers at once because it imports none of the heavy libraries (checked by what it imports,
    not by a stopwatch, which would measure the machine's load)."""
    probe = ("import sys\nfrom synthloop.agent.cli import main\nsys.argv = ['synthloop', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print('imported:', *(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert "generate" in result.stdout and "validate" in result.stdout, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "imported:"


def test_run_then_validate(tmp_path: Path, spec_file: Path) -> None:
    out = tmp_path / "out"
    result = synthloop("run", str(spec_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "kept 6/6 images" in result.stdout and str(out) in result.stdout
    check = synthloop("validate", str(out))
    assert check.returncode == 0 and "valid" in check.stdout, check.stdout


def test_validate_names_the_defect_of_a_corrupted_dataset(tmp_path: Path, spec_file: Path) -> None:
    out = tmp_path / "out"
    assert synthloop("run", str(spec_file), "--out", str(out)).returncode == 0
    victim = sorted((out / "images").rglob("*.png"))[0]
    victim.unlink()
    check = synthloop("validate", str(out))
    assert check.returncode != 0
    assert victim.name in check.stdout


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"n_images": -3}, ["n_images"]),
        ({"n_images": 10**9}, ["n_images"]),
        ({"formats": ["coco", "pascal"]}, ["formats"]),
        ({"width": 100000}, ["width"]),
        ({"objects": []}, ["objects"]),
    ],
)
def test_bad_specs_give_one_clear_line(tmp_path: Path, change: dict, needles: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **change}))
    result = synthloop("run", str(path), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "bad.yaml", *needles)
    assert not (tmp_path / "out").exists()


def test_unreadable_spec_files(tmp_path: Path) -> None:
    assert_one_line_error(synthloop("run", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")),
                          "not found")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert_one_line_error(synthloop("run", str(broken), "--out", str(tmp_path / "o")), "not valid JSON")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00junk")
    assert_one_line_error(synthloop("run", str(binary), "--out", str(tmp_path / "o")), "binary.yaml")


def test_bad_output_paths_lose_nothing(tmp_path: Path, spec_file: Path) -> None:
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me")
    assert_one_line_error(synthloop("run", str(spec_file), "--out", str(a_file)), "is a file")
    assert a_file.read_text() == "keep me"

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.md").write_text("mine")
    assert_one_line_error(synthloop("run", str(spec_file), "--out", str(busy)), "not empty")
    assert (busy / "notes.md").read_text() == "mine"

    out = tmp_path / "out"
    assert synthloop("run", str(spec_file), "--out", str(out)).returncode == 0
    before = (out / "annotations" / "instances_train.json").read_bytes()
    assert_one_line_error(synthloop("run", str(spec_file), "--out", str(out)), "already holds a synthloop run")
    assert (out / "annotations" / "instances_train.json").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "cups", "--out", "o", "--n", "-5"], "--n must be between 1 and 1000000"),
        (["generate", "cups", "--out", "o", "--n", "5000000"], "--n must be between 1 and 1000000"),
        (["generate", "cups", "--out", "o", "--n", "lots"], "--n"),
        (["generate", "   ", "--out", "o", "--yes"], "request is empty"),
        (["generate", "cups"], "--out"),
        (["frobnicate"], "frobnicate"),
        (["resume", "nowhere"], "holds no synthloop run"),
        (["validate", "nowhere"], "not a directory"),
    ],
)
def test_bad_command_lines(tmp_path: Path, args: list[str], needle: str) -> None:
    result = synthloop(*args, cwd=tmp_path)
    assert_one_line_error(result, needle)
    assert not (tmp_path / "o").exists()


def test_spec_json_is_what_ran(tmp_path: Path, spec_file: Path) -> None:
    out = tmp_path / "out"
    assert synthloop("run", str(spec_file), "--out", str(out)).returncode == 0
    ran = json.loads((out / "spec.json").read_text())
    assert ran["n_images"] == 6 and [o["name"] for o in ran["objects"]] == ["cup", "plate"]
