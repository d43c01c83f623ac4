"""Runs of the web UI: each a folder of the workspace, driven by `agent.runner` in a worker thread.

A run's graph runs in its own thread (start_run / resume_run); when the graph stops at the approval
interrupt, the thread publishes the payload and blocks on a queue that the HTTP handlers feed with the
user's reply. HTTP handlers never wait for the graph.

Besides the runner's own files (`.work/run.json`, the SQLite checkpoint), the UI keeps, per run:
    .work/chat.jsonl   the conversation (one event per line: seq, role, text, optional spec) — survives restarts
    .work/ui.json      the last status the UI saw ("done", "cancelled", "error", …)
After a server restart every run folder is listed again; one that did not finish is "stopped" and the
Resume button continues it from its checkpoint (a run that was waiting for approval asks again).

Run ids are `YYYYmmdd-HHMMSS-slug-RANDOM` (64 random bits: not guessable from the request or the time), and each
run's folder is created with an exclusive mkdir under the manager's lock, so simultaneous requests never share a
folder. At most `max_active` runs are active (planning, waiting or generating) at once; more are refused (429).
Each new run's config is the server's with the user's uploaded data put in (`user_data.py`: the active reference
set and cut-outs, a snapshot of the reference images); its conversation opens with how the run uses that data.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.agent.chat import guarded_reviser, interpret_reply, slugify, spec_changes
from synthloop.agent.web.safety import UnsafeRequest, check_run_id, inside
from synthloop.agent.web.user_data import UserData

logger = logging.getLogger(__name__)

RUN_FILE = ".work/run.json"
CHAT_FILE = ".work/chat.jsonl"
UI_FILE = ".work/ui.json"
LIVE = ("planning", "waiting", "running", "exporting")
STOP = {"action": "stop"}  # put on a run's reply queue by `RunManager.shutdown`, never sent by a browser
PlannerFactory = Callable[[Any], Callable]          # RunConfig → Planner
ReviserFactory = Callable[[Any, Callable], Callable]  # (RunConfig, Planner) → Reviser


class RunStopped(Exception):
    """The server is stopping: the run ends at its next progress event or question, resumable from its
    checkpoint (as after a kill at that instant)."""


@dataclass
class RunHandle:
    """One run as the UI sees it: conversation, status, counters, and the reply queue of its worker."""

    run_id: str
    out_dir: Path
    status: str = "stopped"
    error: str = ""
    kept: int = 0
    rejected: int = 0
    total: int = 0
    pending: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: queue.Queue = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_spec: dict[str, Any] | None = None
    saved: int = 0  # events already in .work/chat.jsonl
    stop: threading.Event = field(default_factory=threading.Event)  # set by RunManager.shutdown

    # ----------------------------------------------------------------- persistence

    @classmethod
    def load(cls, run_id: str, out_dir: Path) -> RunHandle:
        """Rebuild a handle from the run folder (after a restart, or for a run made by the CLI)."""
        handle = cls(run_id=run_id, out_dir=out_dir)
        chat = out_dir / CHAT_FILE
        if chat.is_file():
            for line in chat.read_text(encoding="utf-8").splitlines():
                try:
                    handle.events.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line after a crash
        handle.saved = len(handle.events)
        specs = [e["spec"] for e in handle.events if e.get("spec")]
        handle.last_spec = specs[-1] if specs else _read_json(out_dir / "spec.json")
        handle.total = int((handle.last_spec or {}).get("n_images", 0))
        handle.kept = len(list((out_dir / ".work" / "kept").glob("*.json")))
        handle.rejected = len(list((out_dir / ".work" / "rejected").glob("*.json")))
        saved = (_read_json(out_dir / UI_FILE) or {}).get("status", "")
        if (out_dir / "manifest.jsonl").is_file():
            handle.status = "done"
        elif saved in ("cancelled", "done"):
            handle.status = saved
        if not handle.events:
            run = _read_json(out_dir / RUN_FILE) or {}
            if run.get("request"):
                handle.events.append({"seq": 0, "role": "user", "text": run["request"]})
        return handle

    def add_event(self, role: str, text: str, **extra: Any) -> None:
        """Append to the conversation (memory and .work/chat.jsonl)."""
        with self.lock:
            event = {"seq": len(self.events), "role": role, "text": text, **extra}
            self.events.append(event)
            if not (self.out_dir / RUN_FILE).is_file():
                return  # the runner has not created the folder yet; written with the next event
            unsaved, self.saved = self.events[self.saved:], len(self.events)
            with (self.out_dir / CHAT_FILE).open("a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in unsaved))

    def set_status(self, status: str, error: str = "") -> None:
        """Change the status and remember it in .work/ui.json."""
        from synthloop.tools.io import atomic_write_json

        self.status, self.error = status, error
        if (self.out_dir / ".work").is_dir():
            atomic_write_json(self.out_dir / UI_FILE, {"status": status, "error": error, "time": time.time()})

    # ----------------------------------------------------------------- worker side

    @property
    def alive(self) -> bool:
        """Whether a worker thread is driving this run now."""
        return self.thread is not None and self.thread.is_alive()

    def on_progress(self, event: str, data: dict) -> None:
        """The graph's progress events → counters and status."""
        if self.stop.is_set():
            raise RunStopped("the server is stopping")
        if event == "planning":
            self.set_status("planning")
        elif event == "kept":
            self.kept += 1
        elif event == "rejected":
            self.rejected += 1
        elif event == "exporting":
            self.set_status("exporting")

    def on_interrupt(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Publish the approval question, then wait (in the worker thread) for the browser's reply."""
        from synthloop.agent.summary import format_notices
        from synthloop.tools.types import Notice

        spec = payload["spec"]
        changes = spec_changes(self.last_spec, spec) if self.last_spec else []
        question = (payload.get("questions") or [""])[0]
        if question:
            text = question
        elif changes:
            text = "Updated the spec: " + "; ".join(changes) + ". Approve it, or tell me what to change."
        elif self.last_spec:
            text = "The spec is unchanged. Approve it, or tell me what to change."
        else:
            text = "Here is the plan. Approve it, edit the table, or tell me what to change."
        notices = format_notices(Notice.model_validate(n) for n in payload.get("notices") or [])
        if notices:  # what the plan does not carry is said before approval, not only shown in the table
            text = "\n".join([*notices, text])
        self.last_spec = spec
        self.total = int(spec.get("n_images", 0))
        self.add_event("assistant", text, spec=spec, questions=payload.get("questions") or [])
        with self.lock:
            self.pending = payload
        self.set_status("waiting")
        reply = self.replies.get()
        if reply is STOP:
            raise RunStopped("the server is stopping")
        self.set_status("running" if reply.get("action") == "approve" else "planning")
        return reply

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check a reply from the browser and hand it to the waiting worker; returns the graph reply."""
        from pydantic import ValidationError

        from synthloop.agent.specfile import describe_validation_error
        from synthloop.tools.types import TaskSpec

        with self.lock:
            payload = self.pending
            if payload is None:
                raise UnsafeRequest("this run is not waiting for an answer", 409)
            action = body.get("action")
            if action == "edit":
                try:
                    spec = TaskSpec.model_validate({**body.get("spec", {}), "questions": []})
                except ValidationError as exc:
                    raise UnsafeRequest(describe_validation_error(exc, "the edited spec is invalid")) from exc
                reply: dict[str, Any] = {"action": "edit", "spec": spec.model_dump(mode="json")}
                said = "(edited the spec table)"
            elif action in ("approve", "cancel"):
                reply, said = {"action": action}, action
            else:
                text = str(body.get("text", ""))[:4000]
                meaning = interpret_reply(text, payload)
                if meaning.reply is None:
                    raise UnsafeRequest(meaning.hint)
                reply, said = meaning.reply, text
            if reply["action"] == "approve" and payload.get("questions"):
                raise UnsafeRequest(f"answer the question first: {payload['questions'][0]}")
            self.pending = None
        self.add_event("user", said)
        self.replies.put(reply)
        return reply


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RunManager:
    """All runs of one workspace folder."""

    def __init__(self, workspace: Path, config: Any, planner_factory: PlannerFactory,
                 reviser_factory: ReviserFactory, *, max_active: int = 2, user_data: UserData | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.user_data = user_data or UserData(self.workspace, config)
        self.planner_factory, self.reviser_factory = planner_factory, reviser_factory
        self.handles: dict[str, RunHandle] = {}
        self.lock = threading.RLock()
        self.max_active = max_active
        self.stopping = False

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run id, checked against the pattern and the workspace."""
        return inside(self.workspace, check_run_id(run_id))

    def get(self, run_id: str) -> RunHandle:
        """The handle of an existing run (loaded from disk the first time)."""
        out_dir = self.run_dir(run_id)
        with self.lock:
            handle = self.handles.get(run_id)
            if handle is None:
                if not (out_dir / RUN_FILE).is_file():
                    raise UnsafeRequest(f"no run {run_id!r} in the workspace", 404)
                handle = self.handles[run_id] = RunHandle.load(run_id, out_dir)
            return handle

    def list(self) -> list[RunHandle]:
        """Every run folder of the workspace, newest first."""
        found = []
        for path in sorted(self.workspace.iterdir(), reverse=True):
            if path.is_dir() and (path / RUN_FILE).is_file() and not path.is_symlink():
                try:
                    found.append(self.get(path.name))
                except UnsafeRequest:
                    continue  # a folder name the UI does not serve
        return found

    def create(self, request: str | None = None, spec: Any | None = None) -> RunHandle:
        """Start a new run from a request (planned) or a validated spec (shown for approval), with the user's
        active data in its config (`user_data.py`); the conversation says how the run uses that data."""
        from synthloop.agent.runner import start_run

        title = request if request is not None else " ".join(spec.class_names)
        config, notes = self.user_data.run_config()
        with self.lock:  # the capacity check, the folder and the thread: one step for concurrent requests
            self._check_capacity()
            out_dir = self._new_run_dir(title)
            handle = self.handles[out_dir.name] = RunHandle(run_id=out_dir.name, out_dir=out_dir)
            handle.add_event("user", request if request is not None else f"(spec file: {title})")
            for note in notes:
                handle.add_event("assistant", note.text, **({"warning": True} if note.warning else {"note": True}))
            planner = self.planner_factory(config)
            reviser = self._reviser(handle, planner, config)
            self._spawn(handle, lambda: start_run(
                out_dir, config, request=request, spec=spec, planner=planner, reviser=reviser,
                on_interrupt=handle.on_interrupt, progress=handle.on_progress))
        return handle

    def _new_run_dir(self, title: str) -> Path:
        """Create the folder of a new run: `YYYYmmdd-HHMMSS-slug-RANDOM`, made with an exclusive mkdir."""
        while True:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{slugify(title)}-{secrets.token_hex(8)}"
            try:
                (self.workspace / name).mkdir()
            except FileExistsError:
                continue  # 64 random bits collided: draw again
            return self.workspace / name

    def active(self) -> int:
        """Runs whose worker thread is alive (planning, waiting for approval, generating, exporting)."""
        with self.lock:
            return sum(1 for handle in self.handles.values() if handle.alive)

    def _check_capacity(self) -> None:
        if self.stopping:
            raise UnsafeRequest("the server is shutting down", 503)
        active = self.active()
        if active >= self.max_active:
            raise UnsafeRequest(f"{active} runs are active (the limit is {self.max_active}): wait for one to finish "
                                "or cancel one", 429)

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """The server is stopping (SIGTERM, Ctrl-C): every active run ends at its next progress event or question
        and is marked stopped; its checkpoint stays, so the Resume button continues it after a restart. Waits up
        to `timeout_s` for the worker threads; False when some are still busy (a long render or LLM call)."""
        with self.lock:
            self.stopping = True
            live = [handle for handle in self.handles.values() if handle.alive]
        for handle in live:
            handle.stop.set()
            handle.replies.put(STOP)
        deadline = time.monotonic() + timeout_s
        for handle in live:
            if handle.thread is not None:
                handle.thread.join(max(0.0, deadline - time.monotonic()))
        for handle in live:
            handle.add_event("assistant", "The server stopped; Resume continues this run from its checkpoint.")
            handle.set_status("stopped", "the server stopped")
        return not any(handle.alive for handle in live)

    def resume(self, run_id: str) -> RunHandle:
        """Continue a stopped run from its checkpoint in a worker thread."""
        from synthloop.agent.config import RunConfig
        from synthloop.agent.runner import read_run_file, resume_run

        handle = self.get(run_id)
        with self.lock:
            if handle.alive:
                raise UnsafeRequest("this run is already running", 409)
            if handle.status in ("done", "cancelled"):
                raise UnsafeRequest(f"this run is {handle.status}; start a new one", 409)
            self._check_capacity()
            config = RunConfig.model_validate(read_run_file(handle.out_dir)["config"])
            planner = self.planner_factory(config)
            reviser = self._reviser(handle, planner, config)
            handle.add_event("assistant", "Resuming from the last checkpoint…")
            self._spawn(handle, lambda: resume_run(handle.out_dir, planner=planner, reviser=reviser,
                                                   on_interrupt=handle.on_interrupt, progress=handle.on_progress))
        return handle

    def _reviser(self, handle: RunHandle, planner: Callable, config: Any) -> Callable:
        return guarded_reviser(self.reviser_factory(config, planner),
                               lambda text: handle.add_event("assistant", text, warning=True))

    def _spawn(self, handle: RunHandle, work: Callable[[], Any]) -> None:
        handle.set_status("planning")
        handle.thread = threading.Thread(target=self._work, args=(handle, work), daemon=True,
                                         name=f"synthloop-run-{handle.run_id}")
        handle.thread.start()

    def _work(self, handle: RunHandle, work: Callable[[], Any]) -> None:
        """The worker thread: drive the graph to its end and put the outcome into the conversation."""
        from synthloop.agent.errors import UserInputError
        from synthloop.agent.summary import format_run
        from synthloop.tools.llm.client import LLMError

        try:
            summary = work()
        except Exception as exc:  # the worker must report, never die silently
            if self.stopping:
                return  # the server is going down under this run: it stays "stopped", resumable
            if isinstance(exc, UserInputError | LLMError):
                message = " ".join(str(exc).split())  # user mistakes and endpoint failures: one line
            else:
                logger.exception("run %s failed", handle.run_id)
                message = " ".join(f"{type(exc).__name__}: {exc}".split())
            handle.add_event("assistant", f"error: {message}", error=True)
            handle.set_status("error", message)
            return
        with handle.lock:
            handle.pending = None
        if summary.cancelled:
            handle.add_event("assistant", "Cancelled: nothing generated.")
            handle.set_status("cancelled")
            return
        handle.kept, handle.rejected = summary.kept, summary.rejected
        text = format_run(summary).replace(f"{summary.out_dir}/", "./")
        text += f"\nfiles in {handle.out_dir} (or download the zip)" if summary.exported else ""
        handle.add_event("assistant", text, summary=True)
        handle.set_status("done" if summary.exported else "error", "" if summary.exported else "not exported")
