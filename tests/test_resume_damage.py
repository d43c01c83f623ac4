"""A damaged checkpoint is one clear error on resume, never a traceback and never a silent restart on top of
the records of the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import CHECKPOINT_FILE, RUN_FILE, resume_run, start_run
from synthloop.tools.types import ObjectSpec, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], n_images=3, width=64, height=64)


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    start_run(out, RunConfig(renderer="compositor"), spec=SPEC, auto_approve=True)
    return out


def test_an_emptied_checkpoint_is_refused_not_restarted(finished: Path) -> None:
    manifest = (finished / "manifest.jsonl").read_bytes()
    (finished / CHECKPOINT_FILE).write_bytes(b"")
    with pytest.raises(UserInputError, match=r"checkpoint .* is empty but the run has records"):
        resume_run(finished)
    assert (finished / "manifest.jsonl").read_bytes() == manifest


def test_a_garbled_checkpoint_is_one_error(finished: Path) -> None:
    (finished / CHECKPOINT_FILE).write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    with pytest.raises(UserInputError, match=r"checkpoint .* (is unreadable|is empty)"):
        resume_run(finished)


def test_a_deeply_nested_run_file_is_one_error(finished: Path) -> None:
    (finished / RUN_FILE).write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(UserInputError, match="cannot read"):
        resume_run(finished)
