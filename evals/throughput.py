"""`synthloop bench`: renderer throughput against the whole loop, measured in one run.

Three measurements on the same layouts, same size, same worker count, for one renderer (`--renderer`, the
compositor by default):
1. render only        the renderer's `render` over a thread pool (the raw backend);
2. render + encode    plus PNG encoding (what the render node does besides writing);
3. end to end         `synthloop run` on the same spec: layout, render, write, annotate, critique, records,
                      LangGraph checkpoints, export (COCO + YOLO + manifest + card).
The orchestration share is the part of end-to-end wall time spent outside the render node (render + encode +
write), taken from the run's own phase timers.
"""

from __future__ import annotations

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
class BenchResult:
    """Throughput figures (images per second) and where end-to-end time went."""

    n: int
    size: int
    workers: int
    renderer: str
    render_only_ips: float
    render_encode_ips: float
    end_to_end_ips: float
    end_to_end_seconds: float
    outside_render_share: float
    kept: int
    rejected: int
    phase_seconds: dict[str, float] = field(default_factory=dict)


def run_bench(n: int = 200, size: int = 512, workers: int = 2, renderer_name: str = "compositor") -> BenchResult:
    """Run the three measurements with renderer `renderer_name` (default options) and return the figures."""
    from synthloop.agent.config import RunConfig
    from synthloop.agent.runner import start_run
    from synthloop.tools.io import encode_png
    from synthloop.tools.layout.procedural import ProceduralLayoutSampler
    from synthloop.tools.render.registry import RENDERERS
    from synthloop.tools.seeding import derive_seed

    spec = bench_spec(n, size)
    sampler, renderer = ProceduralLayoutSampler(), RENDERERS.build(renderer_name)
    seeds = [derive_seed(spec.seed, i, 0) for i in range(n)]
    layouts = [sampler.sample(spec, s) for s in seeds]
    jobs = list(zip(layouts, seeds, strict=True))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: renderer.render(job[0], spec, job[1]), jobs[: min(4, n)]))  # warm caches
        start = time.perf_counter()
        list(pool.map(lambda job: renderer.render(job[0], spec, job[1]), jobs))
        render_only = time.perf_counter() - start
        start = time.perf_counter()
        list(pool.map(lambda job: encode_png(renderer.render(job[0], spec, job[1]).image), jobs))
        render_encode = time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="synthloop-bench-") as tmp:
        summary = start_run(Path(tmp) / "run", RunConfig(workers=workers, renderer=renderer_name), spec=spec,
                            auto_approve=True)
    render_node = summary.phase_seconds.get("render", 0.0)
    return BenchResult(
        n=n, size=size, workers=workers, renderer=renderer_name, render_only_ips=n / render_only,
        render_encode_ips=n / render_encode,
        end_to_end_ips=summary.kept / summary.seconds, end_to_end_seconds=summary.seconds,
        outside_render_share=1.0 - render_node / summary.seconds, kept=summary.kept, rejected=summary.rejected,
        phase_seconds=summary.phase_seconds,
    )


def format_bench(result: BenchResult) -> str:
    """The bench report as printed by `synthloop bench`."""
    lines = [
        f"synthloop bench: {result.n} images at {result.size}×{result.size}, {result.workers} worker thread(s)",
        f"  {result.renderer + ' only':<25}{result.render_only_ips:8.1f} images/s",
        f"  {result.renderer + ' + PNG encode':<25}{result.render_encode_ips:8.1f} images/s",
        f"  end to end (run → export){result.end_to_end_ips:8.1f} images/s   "
        f"({result.kept} kept, {result.rejected} rejected, {result.end_to_end_seconds:.2f} s)",
        f"  outside render + encode  {result.outside_render_share:8.1%} of end-to-end time",
        "  end-to-end time by phase:",
    ]
    accounted = 0.0
    for phase in ("layout", "render", "annotate", "critique", "store", "export"):
        seconds = result.phase_seconds.get(phase, 0.0)
        accounted += seconds
        lines.append(f"    {phase:<10}{seconds:7.2f} s  {seconds / result.end_to_end_seconds:6.1%}")
    rest = result.end_to_end_seconds - accounted
    lines.append(f"    {'graph+ckpt':<10}{rest:7.2f} s  {rest / result.end_to_end_seconds:6.1%}")
    return "\n".join(lines)
