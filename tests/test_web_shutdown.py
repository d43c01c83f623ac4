"""SIGTERM of `synthloop ui` while a run generates: the server exits cleanly (no traceback, exit 0 or 143), the run is
marked stopped, and after a restart its Resume button finishes it: a valid dataset with every image.

Before the run threads were stopped and joined, the interpreter cut them down at exit inside native code now and
then ("FATAL: exception not rethrown", the process aborted with SIGABRT)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ui_server import TESTS_DIR, free_port

N_IMAGES = 900  # the scripted planner reads "900" as the image count: long enough to be stopped half-way


class Page:
    """The UI's page as a client: session cookie, CSRF token, JSON."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = self.get("/api/session")["csrf"]

    def get(self, path: str) -> Any:
        with self.opener.open(self.base + path, timeout=120) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(self.base + path, data=json.dumps(body or {}).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-Synthloop-CSRF": self.csrf})
        with self.opener.open(request, timeout=120) as response:
            return json.loads(response.read())

    def wait(self, run_id: str, done: Any, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.get(f"/api/runs/{run_id}/state")
            if done(state):
                return state
            assert time.monotonic() < deadline, state
            time.sleep(0.2)


@contextmanager
def ui(workspace: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {**os.environ, "SYNTHLOOP_PLANNER": "scripted_planner:make_planner",
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "synthloop.agent.cli", "ui", "--port", str(port), "--workspace",
                                str(workspace)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(base + "/api/runs", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_stops_the_ui_cleanly_and_the_run_resumes(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with ui(workspace) as (process, base):
        page = Page(base)
        run_id = page.post("/api/runs", {"request": f"cups {N_IMAGES}"})["id"]
        page.wait(run_id, lambda s: s["status"] == "waiting")
        page.post(f"/api/runs/{run_id}/reply", {"action": "approve"})
        state = page.wait(run_id, lambda s: s["kept"] >= 3 or s["status"] not in ("running", "planning"))
        assert state["status"] == "running" and state["kept"] < N_IMAGES, state
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode in (0, 143), stderr
    assert "Traceback" not in stderr and "FATAL" not in stderr, stderr  # no thread cut down inside native code
    run_dir = workspace / run_id
    assert json.loads((run_dir / ".work" / "ui.json").read_text())["status"] == "stopped"
    assert not (run_dir / "manifest.jsonl").exists()

    with ui(workspace) as (process, base):
        page = Page(base)
        listed = {run["id"]: run for run in page.get("/api/runs")["runs"]}
        assert listed[run_id]["status"] == "stopped"
        page.post(f"/api/runs/{run_id}/resume")
        final = page.wait(run_id, lambda s: s["status"] in ("done", "error"))
        assert final["status"] == "done", final
    manifest = (run_dir / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == N_IMAGES
    check = subprocess.run([sys.executable, "-m", "synthloop.agent.cli", "validate", str(run_dir)],
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout
