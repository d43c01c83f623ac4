"""`synthloop arena` end to end on tiny specs: the measured judge (no VLM, no detector in the tests), a scripted
VLM judge, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer
from helpers_cli import synthloop

SPEC = {"objects": [{"name": "cup", "min_count": 1, "max_count": 2}, {"name": "plate", "min_count": 0, "max_count": 1}],
        "width": 64, "height": 64, "seed": 3, "formats": ["coco"]}
HEADER = ["rank", "name", "BT score", "95% interval", "Elo", "W", "L", "T", "matches"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"spec": tmp_path / "tiny.yaml", "easy": tmp_path / "easy.yaml", "hard": tmp_path / "hard.yaml"}
    paths["spec"].write_text(yaml.safe_dump(SPEC))
    paths["easy"].write_text(yaml.safe_dump({"spec": {"difficulty": "easy"}, "workers": 1}))
    paths["hard"].write_text(yaml.safe_dump({"name": "hard-mode", "spec": {"difficulty": "hard"}}))
    return paths


def table(stdout: str) -> dict[str, list[str]]:
    """Leaderboard rows by contestant name: [rank, BT, interval low, high, Elo, W, L, T, matches]."""
    lines = stdout.splitlines()
    assert all(word in lines[0] for word in HEADER), lines[0]
    rows = {}
    for line in lines[1:]:
        if not line.strip():
            break
        cells = line.replace("[", " ").replace("]", " ").replace(",", " ").split()
        rows[cells[1]] = [cells[0], *cells[2:]]
    return rows


def test_arena_ranks_configs_with_the_measured_judge(tmp_path: Path, files: dict[str, Path]) -> None:
    out = tmp_path / "arena"
    result = synthloop("arena", str(files["spec"]), "--config", str(files["easy"]), "--config", str(files["hard"]),
                       "--n", "3", "--out", str(out), "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert set(rows) == {"easy", "hard-mode"}
    assert sorted(r[0] for r in rows.values()) == ["1", "2"]
    for row in rows.values():
        bt, low, high, elo = map(float, row[1:5])
        wins, losses, ties, matches = map(int, row[5:9])
        assert low <= bt <= high and 900 < elo < 1100
        assert wins + losses + ties == matches == 3  # one measured vote per image index
    assert "measured quantities" in result.stdout and "order-dependent" in result.stdout
    assert "generating easy on tiny" in result.stderr

    saved = json.loads((out / "arena.json").read_text())
    assert saved["judge"] == "measured.pairwise" and saved["comparisons"] == 3 and len(saved["matches"]) == 3
    assert set(saved["bradley_terry"]["scores"]) == {"easy", "hard-mode"}
    for name in ("easy", "hard-mode"):  # same seeds, full runs kept for inspection
        assert len(list((out / "runs" / name / "tiny" / "images").rglob("*.png"))) == 3
    spec_run = json.loads((out / "runs" / "hard-mode" / "tiny" / "spec.json").read_text())
    assert spec_run["difficulty"] == "hard" and spec_run["seed"] == 3 and spec_run["n_images"] == 3


def test_arena_with_a_scripted_vlm_judge(files: dict[str, Path], server: FakeOpenAIServer) -> None:
    for _ in range(2):  # 2 images × both orders; "easy" (contestant a) always wins on content
        server.queue_json({"reasons": ["a is cleaner"], "winner": "first"})
        server.queue_json({"reasons": ["a is cleaner"], "winner": "second"})
    result = synthloop("arena", str(files["spec"]), "--config", str(files["easy"]), "--config",
                       str(files["hard"]), "--n", "2", "--bootstrap", "20",
                       env={"SYNTHLOOP_VLM_BASE_URL": server.base_url, "SYNTHLOOP_VLM_MODEL": "fake-vlm"})
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 4 and server.pending == 0
    assert server.requests[0]["body"]["model"] == "fake-vlm"
    rows = table(result.stdout)
    assert rows["easy"][0] == "1" and rows["easy"][5:9] == ["4", "0", "0", "4"]
    assert rows["hard-mode"][5:9] == ["0", "4", "0", "4"]
    assert "judge vlm.pairwise" in result.stdout
    assert "position inconsistency: 0/2 order pairs" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--renderer", "compositor"], "at least two contestants"),
     (["--renderer", "compositor", "--renderer", "compositor"], "must be unique"),
     (["--renderer", "compositor", "--renderer", "dalle"], "unknown renderer 'dalle'"),
     (["--renderer", "compositor", "--config", "missing.yaml"], "config file not found"),
     (["--renderer", "a", "--renderer", "b", "--n", "0"], "--n must be between")],
)
def test_arena_user_errors_are_one_line(files: dict[str, Path], args: list[str], needle: str) -> None:
    result = synthloop("arena", str(files["spec"]), *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_arena_refuses_a_bad_spec_override(tmp_path: Path, files: dict[str, Path]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"spec": {"difficulty": "impossible"}}))
    result = synthloop("arena", str(files["spec"]), "--config", str(bad), "--config", str(files["easy"]))
    assert result.returncode == 2 and "contestant 'bad': spec override 'difficulty'" in result.stderr
