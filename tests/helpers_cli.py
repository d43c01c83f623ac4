"""The command line as a user runs it: `python -m synthloop.agent.cli ARGS` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Only a hung command should hit this: a busy shared machine may take minutes for what takes seconds idle.
TIMEOUT_S = 600


def synthloop(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str | None = None,
              timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run `synthloop ARGS` with this interpreter and capture its text output; `env` adds to the environment."""
    return subprocess.run([sys.executable, "-m", "synthloop.agent.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})
