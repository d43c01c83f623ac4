"""Peak memory of whole runs and of their export, and checkpoint size per image, at growing run sizes.

For each size N (2,000 and 20,000 by default) the eval runs `synthloop run` on a 64×64 compositor spec
(three classes, detection + instance segmentation, COCO + YOLO) in a subprocess and measures
- peak RSS of the run (`os.wait4`'s ru_maxrss of that child alone), wall time;
- peak RSS of the export alone: the export node run again on the finished run in a fresh subprocess (so the
  render and critique phases do not mask it), next to the floor: the same process stopped once the run's
  backends are loaded, before exporting anything;
- the LangGraph checkpoint file (`.work/checkpoints.sqlite` plus its WAL) in bytes per image.
Numbers are printed, not asserted. Only the standard library is imported here, so the same file measures
another checkout (`PYTHONPATH=OLD_CHECKOUT python evals/memory.py`) for before/after figures.

    python -m synthloop.evals.memory --sizes 2000 20000 --work runs/memory
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SIZE_PX = 64
CONFIG = {"renderer": "compositor"}  # procedural shapes: fast, so large runs finish in minutes
CHECKPOINT_FILES = (".work/checkpoints.sqlite", ".work/checkpoints.sqlite-wal")

# Re-export a finished run through the export node, as the graph does; with "floor", stop after loading the
# run's backends (what every process pays before exporting anything).
_EXPORT = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from synthloop.agent import nodes
from synthloop.agent.config import RunConfig
from synthloop.agent.runner import _no_planner, build_deps, read_run_file

out = Path(sys.argv[1])
config = RunConfig.model_validate(read_run_file(out)["config"])

class Runtime:
    context = None

with ThreadPoolExecutor(config.workers) as executor:
    Runtime.context = build_deps(out, config, _no_planner, auto_approve=True, progress=None, executor=executor)
    if sys.argv[2] == "export":
        nodes.export({"spec": json.loads((out / "spec.json").read_text()), "stop_reason": "memory eval"}, Runtime)
"""


@dataclass
class Measure:
    """One size's figures."""

    n: int
    kept: int
    run_s: float
    run_peak_mb: float
    export_s: float
    export_peak_mb: float
    floor_mb: float
    checkpoint_bytes: int

    @property
    def checkpoint_per_image(self) -> float:
        """Checkpoint bytes per kept image."""
        return self.checkpoint_bytes / max(self.kept, 1)


def spec_for(n: int) -> dict:
    """The benchmark spec: `n` images of 64×64, three classes, boxes and masks, COCO and YOLO."""
    return {
        "objects": [{"name": "cup", "min_count": 1, "max_count": 3}, {"name": "plate", "min_count": 0, "max_count": 2},
                    {"name": "fork", "min_count": 0, "max_count": 2}],
        "n_images": n, "width": SIZE_PX, "height": SIZE_PX, "tasks": ["detection", "instance_segmentation"],
        "formats": ["coco", "yolo"], "seed": 1, "request": "memory benchmark",
    }


def peak_rss(args: list[str]) -> tuple[float, float]:
    """Run `args` to completion; (peak RSS in MB of that process alone, seconds). A failure raises."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty child cannot block on it
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"{' '.join(args[:5])} exited {process.returncode}: {tail}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started  # Linux reports kilobytes


def measure(n: int, work: Path) -> Measure:
    """Run, re-export and weigh one size."""
    out = work / f"run-{n}"
    shutil.rmtree(out, ignore_errors=True)
    spec_file, config_file = work / f"spec-{n}.json", work / "config.json"
    spec_file.write_text(json.dumps(spec_for(n)))
    config_file.write_text(json.dumps(CONFIG))
    run_mb, run_s = peak_rss([sys.executable, "-m", "synthloop.agent.cli", "run", str(spec_file), "--out", str(out),
                              "--config", str(config_file)])
    checkpoint = sum((out / name).stat().st_size for name in CHECKPOINT_FILES if (out / name).exists())
    floor_mb, _ = peak_rss([sys.executable, "-c", _EXPORT, str(out), "floor"])
    export_mb, export_s = peak_rss([sys.executable, "-c", _EXPORT, str(out), "export"])
    kept = sum(1 for line in (out / "manifest.jsonl").open(encoding="utf-8") if line.strip())
    return Measure(n, kept, run_s, run_mb, export_s, export_mb, floor_mb, checkpoint)


def format_measures(measures: list[Measure]) -> str:
    """A table of the figures, one row per size."""
    lines = [f"{SIZE_PX}×{SIZE_PX} images, compositor, detection + instance segmentation, COCO + YOLO",
             "images  run peak RSS  run time  export peak RSS (floor)  export time  checkpoint (per image)"]
    for m in measures:
        lines.append(f"{m.n:>6}  {m.run_peak_mb:>9.0f} MB  {m.run_s:>6.0f} s  {m.export_peak_mb:>11.0f} MB "
                     f"({m.floor_mb:.0f} MB)  {m.export_s:>10.1f} s  "
                     f"{m.checkpoint_bytes / 1e6:>6.2f} MB ({m.checkpoint_per_image:,.0f} B)")
    if len(measures) > 1:
        first, last = measures[0], measures[-1]
        extra = max(last.kept - first.kept, 1)
        run_kb = 1e3 * (last.run_peak_mb - first.run_peak_mb) / extra
        export_kb = 1e3 * (last.export_peak_mb - first.export_peak_mb) / extra
        checkpoint_b = (last.checkpoint_bytes - first.checkpoint_bytes) / extra
        lines.append(f"growth {first.n} → {last.n} images: run {run_kb:.1f} KB per image, export {export_kb:.1f} KB "
                     f"per image, checkpoint {checkpoint_b:,.0f} B per image")
    return "\n".join(lines)


def main() -> None:
    """Measure every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--work", type=Path, default=Path("runs/memory"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    measures = []
    for n in args.sizes:
        measures.append(measure(n, args.work))
        print(format_measures(measures[-1:]).splitlines()[-1], flush=True)
    print(format_measures(measures))


if __name__ == "__main__":
    main()
