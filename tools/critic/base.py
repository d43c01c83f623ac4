"""The judge protocol: one sample (with its pixels) in, one `Verdict` (reasons first) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from synthloop.tools.backend import Backend, Capabilities
from synthloop.tools.types import Decision, Sample, TaskSpec, Verdict


@dataclass
class JudgeInput:
    """What a judge sees: the sample record, its RGB pixels, and the spec it was made for."""

    sample: Sample
    image: np.ndarray
    spec: TaskSpec


@runtime_checkable
class Judge(Protocol):
    """Decides accept / reject / edit for one sample. `id` is stable: it is recorded with every verdict.

    A judge with `capabilities.stateful` depends on the samples kept before it: the loop judges those in index
    order (never in parallel) and calls `observe` with every kept sample; stateless judges may run in parallel.
    """

    id: str
    capabilities: Capabilities

    def judge(self, item: JudgeInput) -> Verdict:
        """Return a verdict whose reasons explain the decision."""
        ...

    def observe(self, sample: Sample) -> None:
        """Learn of a kept sample (stateful judges); stateless judges ignore it."""
        ...


class BaseJudge(Backend):
    """Defaults for judges: stateless, `observe` ignores kept samples."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def observe(self, sample: Sample) -> None:
        """Stateless judges learn nothing from kept samples."""


def combine_any_reject(verdicts: list[Verdict]) -> Decision:
    """Ensemble rule: reject if any judge rejects, else edit if any asks for an edit, else accept."""
    decisions = {v.decision for v in verdicts}
    if Decision.reject in decisions:
        return Decision.reject
    if Decision.edit in decisions:
        return Decision.edit
    return Decision.accept
