"""`synthloop bench`: renderer throughput against the whole loop, measured in one run.

On the same layouts, size and worker count, for one renderer (`--renderer`, the compositor by default):
1. render only        the renderer's `render` over a thread pool (the raw backend);
2. render + encode    plus PNG encoding (what a render worker does besides writing);
3. end to end         `synthloop run` on the same spec (layout, render, write, annotate, critique, records,
                      LangGraph checkpoints, export): with the local engine pipelined (the default), and again
                      without pipelining for comparison; with `ray`, also the local engine at 1 worker and the
                      Ray engine at 1 and 2 workers (one Ray instance started first, its start-up reported apart).
The orchestration share of a run is the part of its wall time during which no worker was rendering or encoding
an image: 1 − renderer busy time / wall time, where busy time is the union of the workers' render and encode
intervals (the engine's `BusyClock`), not the render node's wall time. Printed, never asserted.
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from synthloop.tools.types import ExportFormat, ObjectSpec, Task, TaskSpec


def bench_spec(n: int, size: int) -> TaskSpec:
    """A typical three-class detection + segmentation spec."""
    return TaskSpec(
        objects=[ObjectSpec(name="cup", min_count=1, max_count=3), ObjectSpec(name="plate", min_count=1, max_count=2),
                 ObjectSpec(name="fork", min_count=0, max_count=2)],
        n_images=n, width=size, height=size, tasks=[Task.detection, Task.instance_segmentation],
        formats=[ExportFormat.coco, ExportFormat.yolo], scene="kitchen table", seed=0, request="bench",
    )


@dataclass
class EngineRun:
    """One end-to-end run: which engine, how many workers, pipelined or not, and what it took.

    seconds: the run's wall time from its first graph step to the end of export; setup_seconds: building the
    backends before it (Ray: starting the actors); busy_seconds: renderer busy time within `seconds`;
    cpu_seconds: CPU time of this process and of the Ray actors' processes (Ray's daemons not counted), a
    figure that load from other programs on a shared machine hardly moves.
    """

    engine: str
    workers: int
    pipeline: bool
    seconds: float
    setup_seconds: float
    busy_seconds: float
    kept: int
    rejected: int
    cpu_seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        """Kept images per second of run wall time."""
        return self.kept / self.seconds if self.seconds > 0 else 0.0

    @property
    def outside_share(self) -> float:
        """Share of the run's wall time during which no worker rendered or encoded."""
        return max(0.0, 1.0 - self.busy_seconds / self.seconds) if self.seconds > 0 else 0.0

    @property
    def export_share(self) -> float:
        """Share of the run's wall time spent in the export node (after the last render: never overlapped)."""
        return self.phase_seconds.get("export", 0.0) / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchResult:
    """Throughput of the raw renderer and of end-to-end runs (the first run is the default configuration)."""

    n: int
    size: int
    workers: int
    renderer: str
    render_only_ips: float
    render_encode_ips: float
    runs: list[EngineRun]
    ray_start_seconds: float | None = None
    repeat: int = 1

    def run(self, engine: str, workers: int, pipeline: bool = True) -> EngineRun | None:
        """The run measured with these settings, if any."""
        return next((r for r in self.runs if (r.engine, r.workers, r.pipeline) == (engine, workers, pipeline)), None)


def measure_run(spec: TaskSpec, renderer_name: str, *, engine: str = "local", workers: int = 2,
                pipeline: bool = True, address: str | None = None) -> EngineRun:
    """`synthloop run` of `spec` in a temporary folder with the given engine settings."""
    from synthloop.agent.config import ExecutorConfig, RunConfig
    from synthloop.agent.runner import start_run

    config = RunConfig(workers=workers, renderer=renderer_name,
                       executor=ExecutorConfig(engine=engine, address=address, pipeline=pipeline))
    with tempfile.TemporaryDirectory(prefix="synthloop-bench-") as tmp:
        started, cpu = time.perf_counter(), _process_cpu_seconds()
        summary = start_run(Path(tmp) / "run", config, spec=spec, auto_approve=True)
        total, cpu = time.perf_counter() - started, _process_cpu_seconds() - cpu
    return EngineRun(engine=engine, workers=workers, pipeline=pipeline, seconds=summary.seconds,
                     setup_seconds=max(0.0, total - summary.seconds), busy_seconds=summary.busy_seconds,
                     kept=summary.kept, rejected=summary.rejected, cpu_seconds=cpu + summary.worker_cpu_seconds,
                     phase_seconds=summary.phase_seconds)


def _process_cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fastest_runs(spec: TaskSpec, renderer_name: str, settings: list[dict], repeat: int) -> list[EngineRun]:
    """Each setting's fastest of `repeat` runs, the settings interleaved (round after round), so that a burst of
    load from elsewhere on a shared machine does not land on one setting only."""
    rounds = [[measure_run(spec, renderer_name, **setting) for setting in settings] for _ in range(repeat)]
    return [min((r[k] for r in rounds), key=lambda run: run.seconds) for k in range(len(settings))]


def run_bench(n: int = 200, size: int = 512, workers: int = 2, renderer_name: str = "compositor", *,
              ray: bool = False, address: str | None = None, repeat: int = 1) -> BenchResult:
    """Run the measurements with renderer `renderer_name` (default options) and return the figures; each
    end-to-end setting is run `repeat` times (interleaved) and its fastest run reported."""
    from synthloop.tools.io import encode_png
    from synthloop.tools.layout.procedural import ProceduralLayoutSampler
    from synthloop.tools.render.registry import RENDERERS
    from synthloop.tools.seeding import derive_seed

    spec = bench_spec(n, size)
    sampler, renderer = ProceduralLayoutSampler(), RENDERERS.build(renderer_name)
    seeds = [derive_seed(spec.seed, i, 0) for i in range(n)]
    jobs = [(sampler.sample(spec, s), s) for s in seeds]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: renderer.render(job[0], spec, job[1]), jobs[: min(4, n)]))  # warm caches
        start = time.perf_counter()
        list(pool.map(lambda job: renderer.render(job[0], spec, job[1]), jobs))
        render_only = time.perf_counter() - start
        start = time.perf_counter()
        list(pool.map(lambda job: encode_png(renderer.render(job[0], spec, job[1]).image), jobs))
        render_encode = time.perf_counter() - start

    settings: list[dict] = [{"workers": workers}, {"workers": workers, "pipeline": False}]
    ray_start = None
    if not ray:
        runs = fastest_runs(spec, renderer_name, settings, repeat)
    else:
        from synthloop.agent.engines.ray_engine import import_ray

        ray_module = import_ray()
        started = time.perf_counter()
        ray_module.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        ray_start = time.perf_counter() - started
        settings += [{"workers": 1}] if workers != 1 else []
        settings += [{"engine": "ray", "workers": k} for k in (1, 2)]
        try:
            runs = fastest_runs(spec, renderer_name, settings, repeat)
        finally:
            ray_module.shutdown()
    return BenchResult(n=n, size=size, workers=workers, renderer=renderer_name, render_only_ips=n / render_only,
                       render_encode_ips=n / render_encode, runs=runs, ray_start_seconds=ray_start, repeat=repeat)


def format_bench(result: BenchResult) -> str:
    """The bench report as printed by `synthloop bench`."""
    lines = [
        f"synthloop bench: {result.n} images at {result.size}×{result.size}, {result.workers} worker(s)"
        + (f", fastest of {result.repeat} interleaved runs per setting" if result.repeat > 1 else ""),
        f"  {result.renderer + ' only':<25}{result.render_only_ips:8.1f} images/s",
        f"  {result.renderer + ' + PNG encode':<25}{result.render_encode_ips:8.1f} images/s",
        f"  {'end to end (run → export)':<33}images/s  wall s setup s  CPU s  kept rejected  outside render+encode "
        "(of it: export)",
    ]
    for run in result.runs:
        label = f"{run.engine}, {run.workers} worker{'s' if run.workers > 1 else ''}, " + (
            "pipelined" if run.pipeline else "not pipelined")
        figures = (f"{run.images_per_second:8.1f} {run.seconds:7.2f} {run.setup_seconds:7.2f} {run.cpu_seconds:6.1f} "
                   f"{run.kept:5d} {run.rejected:8d}")
        lines.append(f"    {label:<31}{figures}  {run.outside_share:8.1%} ({run.export_share:.1%})")
    ray_1, ray_2, local_1 = result.run("ray", 1), result.run("ray", 2), result.run("local", 1)
    if ray_1 and ray_2 and local_1:
        lines.append(f"  ray: 1 → 2 workers speed-up ×{ray_2.images_per_second / ray_1.images_per_second:.2f}; "
                     f"overhead at 1 worker against the local engine {ray_1.seconds / local_1.seconds - 1:+.1%} "
                     f"wall time, {ray_1.cpu_seconds / local_1.cpu_seconds - 1:+.1%} CPU time")
        lines.append(f"       (not counted: Ray start-up {result.ray_start_seconds:.1f} s, actor start-up in the setup "
                     "column)")
    main = result.runs[0]
    lines.append(f"  node wall time of the {main.engine} pipelined run (phases overlap background rendering):")
    accounted = 0.0
    for phase in ("layout", "render", "annotate", "critique", "store", "export"):
        seconds = main.phase_seconds.get(phase, 0.0)
        accounted += seconds
        lines.append(f"    {phase:<10}{seconds:7.2f} s  {seconds / main.seconds:6.1%}")
    rest = main.seconds - accounted
    lines.append(f"    {'graph+ckpt':<10}{rest:7.2f} s  {rest / main.seconds:6.1%}")
    return "\n".join(lines)
