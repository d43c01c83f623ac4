"""The Ray engine on one local 2-CPU Ray instance (started once for the module: Ray takes seconds to start here).

The dataset is byte-identical whatever the engine and worker count; an actor that dies is replaced and its
requests are sent again with the same results; backends that cannot be built on the workers are one user
error. Skipped only when Ray is not installed (`pip install 'synthloop[ray]'`; the dev extra includes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthloop.agent.backends import make_annotator, make_renderer
from synthloop.agent.config import RunConfig
from synthloop.agent.engines.ray_engine import RayEngine
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import start_run
from synthloop.evals.soak import STRICT_CONFIG, STRICT_SPEC, compare, dataset_files
from synthloop.tools.annotate.base import AnnotateRequest
from synthloop.tools.backend import BackendBlock
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.base import RenderRequest
from synthloop.tools.types import TaskSpec

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'synthloop[ray]')")

SPEC = TaskSpec.model_validate(STRICT_SPEC | {"n_images": 24})


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def _run(out: Path, executor: dict[str, Any], workers: int) -> dict[str, bytes]:
    config = RunConfig.model_validate(STRICT_CONFIG | {"renderer": "compositor", "workers": workers,
                                                       "executor": executor})
    summary = start_run(out, config, spec=SPEC, auto_approve=True)
    assert summary.kept == SPEC.n_images and summary.busy_seconds > 0
    return dataset_files(out)


def test_the_dataset_is_the_same_bytes_on_either_engine_and_any_worker_count(tmp_path: Path) -> None:
    local = _run(tmp_path / "local", {"engine": "local"}, workers=2)
    assert json.loads((tmp_path / "local" / "rejected.jsonl").read_text().splitlines()[0])["reasons"]
    for workers in (1, 2):
        assert compare(local, _run(tmp_path / f"ray-{workers}", {"engine": "ray"}, workers)) == [], workers


def test_a_dead_actor_is_replaced_and_its_requests_rendered_again(executor: ThreadPoolExecutor) -> None:
    sampler = ProceduralLayoutSampler()
    requests = [RenderRequest(sampler.sample(SPEC, seed), SPEC, seed) for seed in range(12)]
    renderer, annotator = make_renderer("compositor"), make_annotator("exact")
    expected = renderer.render_batch(requests)
    engine = RayEngine(BackendBlock.model_validate("compositor"), BackendBlock.model_validate("exact"), executor,
                       workers=1)
    try:
        def kill_the_actor_once(i: int, _: object) -> None:
            if i == 0:  # eleven requests are still queued or running on it
                ray.kill(engine._actors[0], no_restart=True)

        got = engine.render(requests, on_result=kill_the_actor_once)
        annotations = engine.annotate([AnnotateRequest(r.layout, g, SPEC) for r, g in zip(requests, got, strict=True)])
        provenance = engine.renderer.edit_provenance()  # forwarded to the actor's renderer
    finally:
        engine.close()
    assert engine.restarts >= 1 and provenance == {"editor": "compositor"}
    for want, have in zip(expected, got, strict=True):
        assert np.array_equal(want.image, have.image) and np.array_equal(want.instance_map, have.instance_map)
    assert annotations == [annotator.annotate(r.layout, e, SPEC) for r, e in zip(requests, expected, strict=True)]


def test_backends_the_workers_cannot_build_are_one_user_error(executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(UserInputError, match=r"could not build the run's backends: renderer 'copy_paste': .*"
                                             r"no-such-folder") as caught:
        RayEngine(BackendBlock.model_validate({"backend": "copy_paste", "assets_dir": str(missing)}),
                  BackendBlock.model_validate("exact"), executor, workers=1)
    assert "\n" not in str(caught.value)
