"""Kill `synthloop run` at seeded random instants (some in the first milliseconds after run.json appears,
some during export, some killing the resume too), resume, and compare every dataset file byte for byte with
an uninterrupted run; strict class balance and near-duplicate settings make the stateful judges matter."""

from __future__ import annotations

import json
from pathlib import Path

from synthloop.evals.soak import STRICT_CONFIG, STRICT_SPEC, soak


def test_killed_runs_resume_to_the_same_bytes(tmp_path: Path) -> None:
    spec, config = tmp_path / "spec.json", tmp_path / "config.json"
    spec.write_text(json.dumps(STRICT_SPEC | {"n_images": 24}))
    config.write_text(json.dumps(STRICT_CONFIG))
    _, trials = soak(spec, config, tmp_path / "soak", trials=8, seed=5)
    assert sum(t.killed for t in trials) >= 4, "most kills must land while the run is still going"
    for k, trial in enumerate(trials):
        assert trial.resumed_rc == 0 and not trial.differences, (k, trial)
