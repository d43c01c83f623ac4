"""Pipelining: the render node starts the next fresh samples while the batch in hand is judged. Prefetched renders
are used only for exactly the request they were made for, at most one batch of them is held, and a run gives
the same bytes with pipelining as without (retries, repairs and best-of-n included)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthloop.agent import runner
from synthloop.agent.backends import make_annotator, make_renderer
from synthloop.agent.config import RunConfig
from synthloop.agent.engines.local import LocalEngine
from synthloop.agent.engines.prefetch import PrefetchJob, RenderPrefetch
from synthloop.agent.runner import start_run
from synthloop.evals.soak import STRICT_CONFIG, STRICT_SPEC, compare, dataset_files
from synthloop.tools.io import encode_png
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.base import RenderRequest
from synthloop.tools.types import TaskSpec

SPEC = TaskSpec.model_validate(STRICT_SPEC | {"n_images": 24})


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        local = LocalEngine(make_renderer("compositor"), make_annotator("exact"), executor, workers=2)
        yield local
        local.close()


def _job(sample_id: str, seed: int, *, encode: bool = True) -> PrefetchJob:
    layout = ProceduralLayoutSampler().sample(SPEC, seed)
    return PrefetchJob(sample_id, 0, RenderRequest(layout, SPEC, seed), encode)


def test_a_prefetched_render_is_handed_over_only_for_the_same_request(engine: LocalEngine) -> None:
    prefetch = RenderPrefetch(engine, capacity=8, png_level=1)
    same, other_seed, other_layout = _job("000001", 7), _job("000002", 8), _job("000003", 9)
    assert prefetch.offer([same, other_seed, other_layout, _job("000004", 10, encode=False)]) == 4
    future = prefetch.take("000001", 0, same.request, encode=True)
    assert future is not None
    direct = engine.renderer.render(same.request.layout, SPEC, 7)
    assert np.array_equal(future.result().result.image, direct.image)
    assert future.result().png == encode_png(direct.image, compress_level=1)
    reseeded = RenderRequest(other_seed.request.layout, SPEC, 99)
    assert prefetch.take("000002", 0, reseeded, encode=True) is None
    layout = other_layout.request.layout
    moved = layout.model_copy(update={"objects": layout.objects[:-1]})  # same seed, one object fewer
    assert prefetch.take("000003", 0, RenderRequest(moved, SPEC, 9), encode=True) is None
    assert prefetch.take("000004", 0, _job("000004", 10).request, encode=True) is None  # not encoded
    assert prefetch.take("000001", 0, same.request, encode=True) is None  # handed over once
    assert (prefetch.hits, prefetch.discarded, len(prefetch)) == (1, 3, 0)


def test_at_most_capacity_renders_are_held(engine: LocalEngine) -> None:
    prefetch = RenderPrefetch(engine, capacity=3, png_level=1)
    jobs = [_job(f"{i:06d}", i) for i in range(6)]
    assert prefetch.offer(jobs) == 3 and len(prefetch) == 3
    assert prefetch.offer(jobs) == 0  # held already, or no room
    assert prefetch.take("000000", 0, jobs[0].request, encode=True) is not None
    assert prefetch.offer(jobs[1:]) == 1 and len(prefetch) == 3  # the window moved past the one taken
    assert prefetch.take("000003", 0, jobs[3].request, encode=True) is not None  # the next one in order


def _run(tmp_path: Path, name: str, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[RenderPrefetch]:
    made: list[RenderPrefetch] = []

    class Recording(RenderPrefetch):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(runner, "RenderPrefetch", Recording)
    summary = start_run(tmp_path / name, RunConfig.model_validate(config), spec=SPEC, auto_approve=True)
    assert summary.kept > 0 and summary.busy_seconds > 0
    return made


@pytest.mark.parametrize("extra", [{"renderer": "compositor"},
                                   {"renderer": "compositor", "best_of_n": 2, "rank_matches_per_sample": 2},
                                   {"renderer": "copy_paste"}],
                         ids=["compositor-strict-critic", "compositor-best-of-2-ranked", "copy-paste-strict-critic"])
def test_pipelined_runs_give_the_same_bytes_as_serial_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           extra: dict[str, Any]) -> None:
    config = STRICT_CONFIG | extra
    pipelined = _run(tmp_path, "pipelined", config, monkeypatch)
    serial = _run(tmp_path, "serial", config | {"executor": {"pipeline": False}}, monkeypatch)
    assert serial == [] and len(pipelined) == 1
    rejected = (tmp_path / "serial" / "rejected.jsonl").read_text().splitlines()
    assert rejected, "the strict critic must reject some samples, so retries share batches with fresh samples"
    # Batches of 4: most fresh samples after the first batch are prefetched (those pushed on by retries, and
    # beyond what is surely needed, are not).
    assert pipelined[0].hits >= (SPEC.n_images - 4) * config.get("best_of_n", 1) // 2
    reference = dataset_files(tmp_path / "serial")
    assert any(name.startswith("images/") for name in reference)
    assert compare(reference, dataset_files(tmp_path / "pipelined")) == []


def test_the_layout_node_opens_the_sample_a_held_render_was_made_for(engine: LocalEngine) -> None:
    prefetch = RenderPrefetch(engine, capacity=2, png_level=1)
    job = _job("000005", 5)
    sample = {"id": "000005", "made": "ahead"}  # any value: the node stores its Sample here
    prefetch.offer([PrefetchJob(job.sample_id, 0, job.request, True, sample=sample)])
    assert prefetch.holds("000005") and not prefetch.holds("000006")
    assert prefetch.sample("000005", SPEC) is sample
    assert prefetch.sample("000005", SPEC.model_copy(update={"seed": SPEC.seed + 1})) is None  # another spec
    assert prefetch.sample("000006", SPEC) is None
