"""`synthloop chat`: a terminal conversation over the same graph as `generate`.

The conversation: the request → the planner's clarifying question(s) → the planned spec → free-text edits
("make it 300", "add forks", "YOLO instead"), each shown again → "yes"/"go" approves, "cancel" stops →
live progress → the closing summary with where the files are.

It reads one answer per line, so it can be scripted (`printf 'cups and plates\\nyes\\n' | synthloop chat`);
end of input cancels cleanly. The pieces both front-ends share (reading a reply, the run folder name, the
diff between two specs, a reviser that never crashes a run) live here too; the web UI imports them.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from synthloop.agent.config import RunConfig
    from synthloop.agent.deps import Planner, ProgressCallback, Reviser
    from synthloop.agent.runner import RunSummary
    from synthloop.tools.types import TaskSpec

logger = logging.getLogger(__name__)

YES = frozenset({"y", "yes", "go", "ok", "okay", "start", "approve", "run", "sure", "yep", "go ahead", "do it"})
CANCEL = frozenset({"cancel", "quit", "exit", "stop", "abort", "no", "n"})
RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


# ------------------------------------------------------------------------------------- shared helpers


@dataclass(frozen=True)
class Interpreted:
    """What a line of user text means at the approval step: a graph reply, or a hint to show instead."""

    reply: dict[str, Any] | None
    hint: str = ""


def _normalise(text: str) -> str:
    return re.sub(r"[\s.!]+$", "", text.strip().lower())


def interpret_reply(text: str, payload: dict[str, Any]) -> Interpreted:
    """Map free text to an approval reply: cancel / answer (open question) / approve / message (an edit)."""
    word = _normalise(text)
    if word in CANCEL:
        return Interpreted({"action": "cancel"})
    if not word:
        return Interpreted(None, "type an answer, 'yes' to start, or 'cancel'")
    if payload.get("questions"):
        if word in YES:
            return Interpreted(None, f"answer the question first: {payload['questions'][0]}")
        return Interpreted({"action": "answer", "text": text.strip()})
    if word in YES:
        return Interpreted({"action": "approve"})
    return Interpreted({"action": "message", "text": text.strip()})


def spec_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two specs (JSON form), one per changed field."""
    skip = {"request", "defaults_used", "questions", "notices"}
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in skip or old.get(key) == new.get(key):
            continue
        if key == "objects":
            before = {o["name"] for o in old.get(key) or []}
            after = {o["name"] for o in new.get(key) or []}
            parts = [f"+{n}" for n in sorted(after - before)] + [f"-{n}" for n in sorted(before - after)]
            changes.append("objects " + (" ".join(parts) if parts else "counts changed"))
        else:
            changes.append(f"{key} {_short(old.get(key))} → {_short(new.get(key))}")
    return changes


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value) if value not in (None, "") else "-"


def slugify(text: str, limit: int = 40) -> str:
    """A lower-case, dash-separated slug of `text` (at most `limit` characters, 'run' when empty)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return slug or "run"


def new_run_dir(workspace: Path, request: str, now: float | None = None) -> Path:
    """A fresh, not yet existing folder `workspace/YYYYmmdd-HHMMSS-slug[-k]` for a new run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{stamp}-{slugify(request)}"
    candidate, k = Path(workspace) / base, 2
    while candidate.exists():
        candidate, k = Path(workspace) / f"{base}-{k}", k + 1
    return candidate


def guarded_reviser(reviser: Reviser, on_error: Callable[[str], None]) -> Reviser:
    """Wrap a reviser so a failing edit keeps the spec (and tells the user) instead of ending the run."""

    def revise(spec: TaskSpec, message: str) -> TaskSpec:
        try:
            return reviser(spec, message)
        except Exception as exc:  # an LLM error or an invalid edit must not end the conversation
            logger.warning("could not apply the edit %r: %s", message, exc)
            on_error(f"could not apply that change ({exc}); the spec is unchanged")
            return spec

    return revise


# ------------------------------------------------------------------------------------------ terminal


class ChatIO(Protocol):
    """How the chat talks to the user."""

    def ask(self, prompt: str) -> str | None:
        """One line from the user; None at end of input."""

    def say(self, text: str, style: str | None = None) -> None:
        """Show one message."""


class TerminalIO:
    """stdout for the conversation, stdin for answers (echoed when piped, so transcripts read well)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False, soft_wrap=True)
        self.interactive = sys.stdin.isatty()

    def ask(self, prompt: str) -> str | None:
        self.console.print(f"[bold cyan]{prompt}[/] ", end="")
        line = sys.stdin.readline()
        if not line:
            self.console.print()
            return None
        line = line.rstrip("\r\n")
        if not self.interactive:
            self.console.print(line, markup=False)
        return line

    def say(self, text: str, style: str | None = None) -> None:
        self.console.print(text, style=style, markup=False)


class TotalAware(Protocol):
    """A progress callback that can be told the number of images once the spec is approved."""

    def __call__(self, event: str, data: dict) -> None: ...

    def set_total(self, total: int) -> None: ...


class Chat:
    """One terminal conversation; `run` drives the graph and returns its summary (None: nothing started)."""

    def __init__(
        self,
        io: ChatIO,
        config: RunConfig,
        planner: Planner,
        reviser: Reviser,
        *,
        out_dir: Path | None = None,
        workspace: Path = Path("runs"),
        progress: TotalAware | ProgressCallback | None = None,
    ) -> None:
        self.io, self.config, self.planner = io, config, planner
        self.reviser = guarded_reviser(reviser, lambda text: self.io.say(text, "yellow"))
        self.out_dir, self.workspace, self.progress = out_dir, workspace, progress
        self.last_spec: dict[str, Any] | None = None

    def run(self, request: str | None = None) -> RunSummary | None:
        """Ask for the request (unless given), then drive the run to its end."""
        from synthloop.agent.runner import start_run

        while not request:
            self.io.say("What dataset do you want? Describe the images, objects, count and formats.")
            line = self.io.ask(">")
            if line is None or _normalise(line) in CANCEL:
                return None
            request = line.strip()
        out_dir = self.out_dir or new_run_dir(self.workspace, request)
        self.io.say(f"Planning… (run folder {out_dir})", "dim")
        return start_run(out_dir, self.config, request=request, planner=self.planner, reviser=self.reviser,
                         on_interrupt=self.on_interrupt, progress=self.progress)

    def on_interrupt(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Show the spec (or the question), then read lines until one is a valid reply."""
        from synthloop.agent.summary import format_spec
        from synthloop.tools.types import TaskSpec

        spec = TaskSpec.model_validate(payload["spec"])
        if self.last_spec is not None:
            changes = spec_changes(self.last_spec, payload["spec"])
            self.io.say("Changed: " + "; ".join(changes) if changes else "The spec is unchanged.", "green")
        self.last_spec = payload["spec"]
        self.io.say("Planned dataset:\n" + format_spec(spec))
        if not spec.questions:
            self.io.say("Start? 'yes' runs it, 'cancel' stops, anything else is a change to the spec.", "dim")
        while True:
            line = self.io.ask(spec.questions[0].text if spec.questions else ">")
            if line is None:
                return {"action": "cancel"}
            meaning = interpret_reply(line, payload)
            if meaning.reply is not None:
                if meaning.reply["action"] == "approve" and hasattr(self.progress, "set_total"):
                    self.progress.set_total(spec.n_images)
                if meaning.reply["action"] in ("message", "answer"):
                    self.io.say("Revising…" if meaning.reply["action"] == "message" else "Planning again…", "dim")
                return meaning.reply
            self.io.say(meaning.hint, "yellow")
