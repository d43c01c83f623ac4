"""The embedded LLM server's child process: an OpenAI-compatible server module that exits with its parent.

    python -m synthloop.tools.llm.server_child PARENT_PID MODULE [ARGS...]

runs `MODULE` (normally `llama_cpp.server`) in this process as `python -m MODULE ARGS` would, after starting
two watchdog threads that end the process as soon as the parent is gone, whatever killed it (SIGKILL included):

1. stdin: the parent holds the write end of this process's stdin pipe and never writes; when the parent dies
   the kernel closes it and the read returns end-of-file at once;
2. the parent pid: polled every `POLL_S` seconds; a changed `os.getppid()` means the parent died and this
   process was re-parented (covers a stdin pipe that some forked sibling still holds open).

A parent-death signal (prctl PR_SET_PDEATHSIG) is not used: it fires when the *thread* that started the child
exits, and the server is started from worker threads (a web UI run, a graph step) that end long before the
process does.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

POLL_S = 0.5
EXIT_PARENT_GONE = 0


def _exit_when_stdin_closes() -> None:
    try:
        while os.read(0, 4096):
            pass  # the parent never writes; anything read is ignored
    except OSError:
        pass
    os._exit(EXIT_PARENT_GONE)


def _exit_when_parent_changes(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os._exit(EXIT_PARENT_GONE)


def start_watchdogs(parent_pid: int) -> None:
    """Start the two daemon threads that end this process when `parent_pid` is no longer its parent."""
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(EXIT_PARENT_GONE)
    threading.Thread(target=_exit_when_stdin_closes, name="parent-pipe", daemon=True).start()
    threading.Thread(target=_exit_when_parent_changes, args=(parent_pid,), name="parent-pid", daemon=True).start()


def main(argv: list[str]) -> None:
    """`argv` = [PARENT_PID, MODULE, ARGS...]: start the watchdogs, then run MODULE as __main__."""
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: python -m synthloop.tools.llm.server_child PARENT_PID MODULE [ARGS...]")
    start_watchdogs(int(argv[0]))
    module = argv[1]
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
