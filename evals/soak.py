"""Kill-and-resume soak: kill `synthloop run` at random instants, resume, compare byte for byte.

Each trial starts a run in a subprocess, kills it with SIGKILL at a seeded random instant (some right after
`.work/run.json` appears, the rest spread over the uninterrupted run's duration, export included), resumes it
(itself killed again in some trials), and compares every dataset file with an uninterrupted run of the same
spec: images, annotations, YOLO labels, manifest.jsonl, rejected.jsonl and the rejected images. Only card.md
(it lists timings) and yolo/data.yaml (it holds the absolute folder path) are left out.

    python -m synthloop.evals.soak --trials 40 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SKIPPED = {"card.md", "yolo/data.yaml"}


@dataclass
class Trial:
    """One kill (or two) and the resume that followed."""

    kill_after_s: list[float]
    killed: int
    resumed_rc: int
    differences: list[str] = field(default_factory=list)


def dataset_files(out_dir: Path) -> dict[str, bytes]:
    """Every file of a finished dataset except the work area and the files that may differ legitimately."""
    files = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir).as_posix()
        if path.is_file() and not rel.startswith(".work/") and rel not in SKIPPED:
            files[rel] = path.read_bytes()
    return files


def compare(reference: dict[str, bytes], other: dict[str, bytes]) -> list[str]:
    """Names of files missing, extra or different."""
    problems = [f"missing {name}" for name in reference if name not in other]
    problems += [f"extra {name}" for name in other if name not in reference]
    problems += [f"differs {name}" for name in reference if name in other and reference[name] != other[name]]
    return problems


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "synthloop.agent.cli", *args]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill(process: subprocess.Popen) -> bool:
    """SIGKILL the whole process group; True when it was still running."""
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return alive


def _run_and_kill(args: list[str], out_dir: Path, after_s: float, early: bool) -> bool:
    """Start `args`, kill it `after_s` seconds after start (after run.json appears when `early`)."""
    process = _start(args)
    if early:
        run_file = out_dir / ".work" / "run.json"
        while not run_file.exists() and process.poll() is None:
            time.sleep(0.0005)
    time.sleep(after_s)
    return _kill(process)


def soak(spec_file: Path, config_file: Path | None, work: Path, *, trials: int, seed: int,
         timeout_s: float = 600.0) -> tuple[float, list[Trial]]:
    """Run the reference, then `trials` kill-and-resume trials; returns the reference duration and the trials."""
    extra = ["--config", str(config_file)] if config_file else []
    reference_dir = work / "reference"
    started = time.perf_counter()
    subprocess.run(_command("run", str(spec_file), "--out", str(reference_dir), *extra), check=True,
                   capture_output=True, timeout=timeout_s)
    duration = time.perf_counter() - started
    reference = dataset_files(reference_dir)
    rng = np.random.default_rng(seed)
    results = []
    for k in range(trials):
        out_dir = work / f"trial-{k:03d}"
        early = k % 4 == 0  # a quarter in the first milliseconds after run.json appears
        first = float(rng.uniform(0.0, 0.01)) if early else float(rng.uniform(0.0, duration))
        killed = int(_run_and_kill(["run", str(spec_file), "--out", str(out_dir), *extra], out_dir, first, early))
        kills = [first]
        if k % 3 == 1 and (out_dir / ".work" / "run.json").exists():  # kill the resume too, then resume again
            second = float(rng.uniform(0.0, duration / 2))
            killed += int(_run_and_kill(["resume", str(out_dir)], out_dir, second, False))
            kills.append(second)
        # Killed before run.json existed: nothing was started, so the run is started again (the folder must
        # accept it); otherwise it is resumed.
        again = ["resume", str(out_dir)] if (out_dir / ".work" / "run.json").exists() else \
            ["run", str(spec_file), "--out", str(out_dir), *extra]
        resumed = subprocess.run(_command(*again), capture_output=True, timeout=timeout_s)
        trial = Trial(kill_after_s=kills, killed=killed, resumed_rc=resumed.returncode)
        if resumed.returncode == 0:
            trial.differences = compare(reference, dataset_files(out_dir))
        else:
            trial.differences = [f"resume failed: {resumed.stderr.decode(errors='replace').strip()[-300:]}"]
        results.append(trial)
    return duration, results


def main() -> None:
    """Print the soak result for a small strict spec (class balance 0.01, near duplicates 0.8)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--work", type=Path, default=Path("runs/soak"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=False)
    spec = args.work / "spec.json"
    spec.write_text(json.dumps(STRICT_SPEC | {"n_images": args.n}))
    config = args.work / "config.json"
    config.write_text(json.dumps(STRICT_CONFIG))
    duration, trials = soak(spec, config, args.work, trials=args.trials, seed=args.seed)
    same = sum(1 for t in trials if not t.differences)
    print(f"reference run {duration:.1f} s; {same}/{len(trials)} resumed runs byte-identical "
          f"({sum(t.killed for t in trials)} kills, seed {args.seed})")
    for k, trial in enumerate(trials):
        if trial.differences:
            print(f"  trial {k} (kills at {trial.kill_after_s}): {trial.differences[:3]}")


STRICT_SPEC = {
    "objects": [{"name": "cup", "min_count": 1, "max_count": 3}, {"name": "plate", "min_count": 0, "max_count": 2},
                {"name": "fork", "min_count": 0, "max_count": 2}],
    "width": 64, "height": 64, "tasks": ["detection", "instance_segmentation"], "formats": ["coco", "yolo"],
    "difficulty": "hard", "seed": 11,
}
# The compositor: copy_paste (the default renderer) cannot meet 0.8 near-duplicate similarity with its few drawings
# per class, and a run that stops early exits 1.
STRICT_CONFIG = {"renderer": "compositor", "batch_size": 4, "workers": 2, "max_class_drift": 0.01,
                 "near_duplicate_min_similarity": 0.8}

if __name__ == "__main__":
    main()
