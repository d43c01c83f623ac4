"""The pilot that fixed the utility eval's cross-fitted critic thresholds (`run.CROSSFIT_*`).

    python -m synthloop.evals.utility.crossfit_pilot DIR [--data-seed 7]

renders the critic arms' pool on a data seed no reported run uses, injects the box defects, cross-fits the
detector and audits the pool (as `eval utility` does), then prints, per pair of thresholds, the share of clean
images rejected and the share of each defect caught. The audit records the judge's scores whatever its
thresholds, so one pass gives the whole table. DIR keeps the runs; a second call only re-reads them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MARGINS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6)
MISSING_SCORES = (0.45, 0.5, 0.52, 0.54, 0.56, 0.58, 0.6)


def threshold_table(work: Path) -> list[dict[str, float]]:
    """Per (relabel margin, missing score): clean images rejected and each defect's share caught, from the audit
    rows and corruptions a utility run left in `work/runs`."""
    corruptions = json.loads((work / "runs" / "corrupted" / "corruptions.json").read_text(encoding="utf-8"))
    defect_of = {(c["file"], c["image_id"]): c["defect"] for c in corruptions}
    rows, kinds = [], []
    for f in sorted((work / "runs" / "filtered").glob("critique_*.jsonl")):
        name = f.stem.removeprefix("critique_") + ".json"
        for line in f.read_text(encoding="utf-8").splitlines():
            rows.append(json.loads(line))
            kinds.append(defect_of.get((name, rows[-1]["image_id"]), "clean"))
    kind = np.array(kinds)
    margin = np.array([r["scores"].get("detector.recognisability/max_rival_margin", -1.0) for r in rows])
    unannotated = np.array([r["scores"].get("detector.recognisability/max_unannotated_score", 0.0) for r in rows])
    table = []
    for m in MARGINS:
        for u in MISSING_SCORES:
            rejected = (margin >= m) | (unannotated >= u)
            entry = {"relabel_margin": m, "missing_score": u, "clean": float(rejected[kind == "clean"].mean())}
            entry |= {d: float(rejected[kind == d].mean()) for d in sorted(set(kinds) - {"clean"})}
            table.append(entry)
    return table


def main() -> None:
    """Run (or re-read) the pilot and print the table."""
    from synthloop.evals.utility.run import UtilitySettings, _make_arms

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--data-seed", type=int, default=7)
    args = parser.parse_args()
    if not (args.work / "runs" / "filtered").is_dir():
        _make_arms(UtilitySettings(data_seed=args.data_seed, comparisons=("filtered_vs_unfiltered",)), args.work,
                   print, {})
    for entry in threshold_table(args.work):
        print("  ".join(f"{k} {v:.2f}" for k, v in entry.items()))


if __name__ == "__main__":
    main()
