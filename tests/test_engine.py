"""The execution engines without Ray: the local engine's results whatever its thread count, whole batches for
batched backends, urgent work before prefetched work, the renderer busy clock, the executor setting, and the
one-line error when the Ray engine is asked for without Ray installed."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import synthloop

from synthloop.agent.backends import make_annotator, make_renderer
from synthloop.agent.config import ConfigError, ExecutorConfig, RunConfig, load_config
from synthloop.agent.engines.base import BusyClock, PriorityPool
from synthloop.agent.engines.local import LocalEngine
from synthloop.agent.engines.ray_engine import actor_plan, check_reachable, wants_gpu
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import resume_config, start_run
from synthloop.evals.throughput import bench_spec
from synthloop.tools.backend import BackendBlock, Capabilities
from synthloop.tools.io import encode_png
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.base import RenderRequest, RenderResult

SPEC = bench_spec(10, 64)


def _requests(n: int = 10) -> list[RenderRequest]:
    sampler = ProceduralLayoutSampler()
    return [RenderRequest(sampler.sample(SPEC, seed), SPEC, seed) for seed in range(100, 100 + n)]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


@pytest.mark.parametrize("workers", [1, 3])
def test_local_engine_renders_as_the_backend_does_whatever_the_thread_count(executor: ThreadPoolExecutor,
                                                                            workers: int) -> None:
    renderer = make_renderer("compositor")
    requests = _requests()
    direct = renderer.render_batch(requests)
    engine = LocalEngine(renderer, make_annotator("exact"), executor, workers=workers)
    try:
        rendered = [f.result() for f in engine.submit_renders(requests, png_level=1)]
        blocking = engine.render(requests)
    finally:
        engine.close()
    for expected, got, again in zip(direct, rendered, blocking, strict=True):
        assert np.array_equal(expected.image, got.result.image) and np.array_equal(expected.image, again.image)
        assert np.array_equal(expected.instance_map, got.result.instance_map)
        assert got.png == encode_png(expected.image, compress_level=1)
    assert engine.busy.busy_seconds() > 0


class _BatchedRenderer:
    """A stand-in GPU renderer: records every batch it is given and the thread that gave it."""

    id = "batched-stand-in"
    capabilities = Capabilities(batched=True)

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        self.calls.append((len(requests), threading.current_thread().name))
        return [RenderResult(image=np.full((4, 4, 3), r.seed % 256, dtype=np.uint8)) for r in requests]


def test_a_batched_renderer_gets_the_whole_batch_in_one_call(executor: ThreadPoolExecutor) -> None:
    renderer = _BatchedRenderer()
    engine = LocalEngine(renderer, make_annotator("exact"), executor, workers=3)  # type: ignore[arg-type]
    try:
        results = [f.result() for f in engine.submit_renders(_requests(7), png_level=1)]
    finally:
        engine.close()
    assert [n for n, _ in renderer.calls] == [7]
    assert [int(r.result.image[0, 0, 0]) for r in results] == list(range(100, 107))
    assert all(r.png == encode_png(r.result.image) for r in results)


def test_urgent_work_is_served_before_queued_prefetched_work() -> None:
    pool = PriorityPool(1)
    release, order = threading.Event(), []
    try:
        blocker = pool.submit(release.wait)
        prefetched = [pool.submit(lambda k=k: order.append(f"prefetch {k}"), urgent=False) for k in range(3)]
        urgent = pool.submit(lambda: order.append("urgent"))
        release.set()
        for future in [blocker, *prefetched, urgent]:
            future.result(timeout=60)
    finally:
        pool.close()
    assert order == ["urgent", "prefetch 0", "prefetch 1", "prefetch 2"]


def test_closing_the_pool_cancels_work_not_started() -> None:
    pool = PriorityPool(1)
    started, release = threading.Event(), threading.Event()
    running = pool.submit(lambda: started.set() or release.wait())
    queued = pool.submit(lambda: "never", urgent=False)
    assert started.wait(timeout=60)
    closer = threading.Thread(target=pool.close)
    closer.start()
    release.set()
    closer.join(timeout=60)
    assert running.result() is True and queued.cancelled()


def test_busy_clock_counts_overlapping_work_once() -> None:
    clock = BusyClock()
    for start, end in [(10.0, 11.0), (10.5, 12.0), (13.0, 14.0), (13.5, 13.6), (20.0, 19.0)]:
        clock.add(start, end)
    assert clock.busy_seconds() == pytest.approx(3.0)
    assert clock.busy_seconds(since=11.0, until=13.5) == pytest.approx(1.5)


def test_many_intervals_are_merged_as_they_come() -> None:
    clock = BusyClock()
    for k in range(10_000):
        clock.add(k * 1.0, k * 1.0 + 1.5)  # each overlaps the next: one long interval
    assert clock.busy_seconds() == pytest.approx(10_000.5)
    assert len(clock._intervals) == 1


def test_the_executor_is_a_name_or_a_block(tmp_path: Path) -> None:
    assert RunConfig().executor == ExecutorConfig(engine="local", pipeline=True)
    assert RunConfig.model_validate({"executor": "ray"}).executor.engine == "ray"
    config = tmp_path / "config.yaml"
    config.write_text("executor: {engine: ray, address: 'ray://head:10001', max_in_flight: 3}\n")
    loaded = load_config(config).executor
    assert (loaded.engine, loaded.address, loaded.max_in_flight) == ("ray", "ray://head:10001", 3)
    for bad, named in [("executor: dask", "executor.engine"), ("executor: {address: 'ray://x:1'}", "executor")]:
        config.write_text(bad + "\n")
        with pytest.raises(ConfigError, match=named):
            load_config(config)


def test_resume_may_move_a_run_to_another_engine() -> None:
    stored = RunConfig(workers=2, batch_size=4)
    moved = resume_config(stored, RunConfig.model_validate({"executor": "ray"}))
    assert moved.executor.engine == "ray" and moved.batch_size == 4
    assert resume_config(moved, RunConfig()).executor.engine == "ray"  # a --config without executor keeps it


def test_actors_one_per_gpu_else_one_per_worker() -> None:
    assert actor_plan({"CPU": 16, "GPU": 4}, workers=2, wants_gpu=True) == (4, {"num_gpus": 1, "num_cpus": 1})
    assert actor_plan({"CPU": 16, "GPU": 4}, workers=2, wants_gpu=False) == (2, {"num_cpus": 1.0})
    assert actor_plan({"CPU": 2}, workers=2, wants_gpu=True) == (2, {"num_cpus": 1.0})
    assert actor_plan({"CPU": 2}, workers=4, wants_gpu=False) == (4, {"num_cpus": 0.5})  # all can be placed
    assert not wants_gpu(BackendBlock.model_validate("compositor"), BackendBlock.model_validate("exact"))
    assert wants_gpu(BackendBlock.model_validate({"backend": "diffusion", "model": "m"}),
                     BackendBlock.model_validate("exact"))
    assert not wants_gpu(BackendBlock.model_validate({"backend": "diffusion", "model": "m", "device": "cpu"}),
                         BackendBlock.model_validate("exact"))


def test_the_ray_engine_without_ray_is_one_line_and_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"objects": [{"name": "cup"}], "n_images": 2, "width": 64, "height": 64}))
    script = tmp_path / "without_ray.py"
    script.write_text("import sys\nsys.modules['ray'] = None  # as if ray were not installed\n"
                      "from synthloop.agent.cli import main\nmain()\n")
    done = subprocess.run([sys.executable, str(script), "run", str(spec), "--out", str(tmp_path / "out"),
                           "--executor", "ray"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: the ray executor needs the ray package: "
                                                "pip install 'synthloop[ray]'"]
    assert not (tmp_path / "out").exists()


def test_executor_options_are_checked_on_the_command_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"objects": [{"name": "cup"}], "n_images": 2, "width": 64, "height": 64}))
    for args, message in [(["--executor", "dask"], "--executor must be local or ray"),
                          (["--address", "ray://head:10001"], "use it with --executor ray")]:
        done = synthloop("run", str(spec), "--out", str(tmp_path / "out"), *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_the_bench_reports_every_setting_it_ran() -> None:
    from synthloop.evals.throughput import format_bench, run_bench

    result = run_bench(n=4, size=64, workers=2)
    assert [(r.engine, r.workers, r.pipeline, r.kept) for r in result.runs] == [("local", 2, True, 4),
                                                                                ("local", 2, False, 4)]
    assert all(0 < r.busy_seconds <= r.seconds and r.cpu_seconds > 0 for r in result.runs)
    report = format_bench(result)
    assert "local, 2 workers, pipelined" in report and "local, 2 workers, not pipelined" in report


def test_a_ray_address_that_does_not_answer_fails_in_seconds_with_one_line(tmp_path: Path) -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    check_reachable(f"127.0.0.1:{port}")
    check_reachable(f"ray://127.0.0.1:{port}")
    listening.close()
    for address, message in [(f"ray://127.0.0.1:{port}", "cannot reach the Ray cluster"),
                             ("ray://head", "is not host:port, ray://host:port or auto")]:
        with pytest.raises(UserInputError, match=message):
            check_reachable(address)
    if importlib.util.find_spec("ray") is not None:  # checked before the run's folder is made
        with pytest.raises(UserInputError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
            start_run(tmp_path / "out", RunConfig.model_validate({"executor": {"engine": "ray",
                                                                               "address": f"127.0.0.1:{port}"}}),
                      spec=SPEC, auto_approve=True)
        assert not (tmp_path / "out").exists()
