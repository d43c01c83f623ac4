"""A fault-injecting OpenAI-compatible proxy on 127.0.0.1, in front of any upstream endpoint (tests only).

Each POST to `/v1/chat/completions` is either forwarded to the upstream server and its answer relayed, or, with
probability `rate`, answered with one fault drawn from `kinds` (seeded: the same seed gives the same sequence of
faults, call by call; `script` fixes the first calls' faults, None meaning "forward"):

- `timeout`:    nothing is sent for `hang_s` seconds (longer than the client's timeout), then the connection closes
- `429`:        HTTP 429 with `Retry-After` in seconds, or as an HTTP date (every other 429)
- `500`:        HTTP 500 with an OpenAI-style error body
- `malformed`:  HTTP 200 whose body is not JSON
- `truncated`:  HTTP 200 whose JSON body is cut in half (Content-Length says the full size, the socket closes)
- `cut_json`:   HTTP 200 whose JSON body is cut in half, with a Content-Length that matches what is sent
- `empty`:      HTTP 200 with a JSON body that is not a chat completion (`{}`)

    with FaultProxy(upstream.base_url, rate=0.25, seed=3) as proxy:
        client = LLMClient(proxy.base_url, ...)
        ...
        proxy.injected  # Counter of the faults injected, by kind; proxy.forwarded: calls passed through

Other paths (`GET /v1/models`) are forwarded without faults.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence

from loopback_http import LoopbackServer, QuietHandler

FAULT_KINDS = ("timeout", "429", "500", "malformed", "truncated", "cut_json", "empty")


class FaultProxy(LoopbackServer):
    """A threaded loopback HTTP proxy injecting faults into chat completions; a context manager."""

    def __init__(self, upstream: str, *, rate: float = 0.25, seed: int = 0, kinds: tuple[str, ...] = FAULT_KINDS,
                 hang_s: float = 5.0, retry_after_s: int = 1, script: Sequence[str | None] = ()) -> None:
        unknown = (set(kinds) | {k for k in script if k is not None}) - set(FAULT_KINDS)
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(f"bad fault settings: kinds {sorted(unknown)}, rate {rate}")
        self.upstream = upstream.rstrip("/")
        self.rate, self.kinds, self.hang_s, self.retry_after_s = rate, kinds, hang_s, retry_after_s
        self._rng = random.Random(seed)
        self._script = list(script)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.calls = 0

    def _draw(self) -> str | None:
        with self._lock:
            self.calls += 1
            if self._script:
                fault = self._script.pop(0)
            else:
                fault = self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
            if fault is None:
                self.forwarded += 1
            else:
                self.injected[fault] += 1
            return fault

    def _forward(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        url = self.upstream + path.removeprefix("/v1")
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def start(self) -> FaultProxy:
        """Bind a free port and serve in a daemon thread."""
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, data: bytes, *, headers: dict[str, str] | None = None,
                       length: int | None = None, close: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data) if length is None else length))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)
                    self.wfile.flush()

            def do_GET(self) -> None:
                status, data = proxy._forward("GET", self.path, None, {})
                self._reply(status, data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._reply(404, b'{"error": {"message": "no route"}}')
                    return
                fault = proxy._draw()
                if fault is None:
                    status, data = proxy._forward("POST", self.path, body, {"Content-Type": "application/json"})
                    self._reply(status, data)
                elif fault == "timeout":
                    time.sleep(proxy.hang_s)
                    self.close_connection = True
                elif fault == "429":
                    error = b'{"error": {"message": "rate limited (injected)", "type": "rate_limit"}}'
                    with proxy._lock:
                        as_date = proxy.injected["429"] % 2 == 0
                    retry_after = (email.utils.formatdate(time.time() + proxy.retry_after_s, usegmt=True)
                                   if as_date else str(proxy.retry_after_s))
                    self._reply(429, error, headers={"Retry-After": retry_after})
                elif fault == "500":
                    self._reply(500, b'{"error": {"message": "internal error (injected)", "type": "server"}}')
                elif fault == "malformed":
                    self._reply(200, b"<html>502 Bad Gateway</html> not json {")
                elif fault == "empty":
                    self._reply(200, b"{}")
                else:
                    status, data = proxy._forward("POST", self.path, body, {"Content-Type": "application/json"})
                    half = data[: max(1, len(data) // 2)]
                    if fault == "truncated":
                        self._reply(200, half, length=len(data), close=True)
                    else:
                        self._reply(200, half)

        self._serve(Handler, 0, "fault-proxy")
        return self


def summary(proxy: FaultProxy) -> str:
    """One line: calls, forwarded, faults by kind (for test failure messages and evals)."""
    faults = json.dumps(dict(sorted(proxy.injected.items())))
    return f"{proxy.calls} calls, {proxy.forwarded} forwarded, faults {faults}"
