"""Start `synthloop ui` as a subprocess on a free loopback port with the scripted planner (test helper)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def ui_server(workspace: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the base URL of a running `synthloop ui` over `workspace`; stop it (by its pid) afterwards."""
    port = free_port()
    environment = {**os.environ, "SYNTHLOOP_PLANNER": "scripted_planner:make_planner",
                   "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
                   **(env or {})}
    log = workspace.parent / f"ui-{port}.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthloop.agent.cli", "ui", "--port", str(port), "--workspace",
             str(workspace), *extra], stdout=log_file, stderr=subprocess.STDOUT, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # generous: a busy machine starts the server late, not never
        while True:
            try:
                with urllib.request.urlopen(base + "/api/runs", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers (e.g. 401 under a token): it is up
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"synthloop ui did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
