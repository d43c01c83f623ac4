"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for client tests (no network, no model).

Queue what `/v1/chat/completions` should answer, in order, then point a client at `server.base_url`:

    with FakeOpenAIServer() as server:
        server.queue_status(500)
        server.queue_json({"classes": ["cat"]})
        ...
        assert len(server.requests) == 2

Every request body is recorded in `server.requests`. When the queue is empty the server answers 500 with
"no scripted response", so an unexpected extra request shows up as a failure, never as a hang; unless it was
made with a `responder` (request body → assistant text), which then answers every unscripted request.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopback_http import LoopbackServer, QuietHandler


@dataclass
class ScriptedResponse:
    """One queued answer: an HTTP status, a JSON body, and a delay before answering."""

    status: int
    body: dict[str, Any]
    delay_s: float = 0.0
    headers: dict[str, str] | None = None


def completion_body(content: str, *, finish_reason: str = "stop", model: str = "fake-model") -> dict[str, Any]:
    """A chat.completion response body with one choice holding `content`."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class FakeOpenAIServer(LoopbackServer):
    """Threaded HTTP server answering queued responses; a context manager."""

    def __init__(self, port: int = 0, responder: Callable[[dict[str, Any]], str] | None = None) -> None:
        self._responder = responder
        self._queue: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._port = port

    # -- scripting --------------------------------------------------------------------------------------

    def queue_text(self, content: str, *, delay_s: float = 0.0, finish_reason: str = "stop") -> None:
        """Answer the next request with this assistant text."""
        self._push(ScriptedResponse(200, completion_body(content, finish_reason=finish_reason), delay_s))

    def queue_json(self, value: Any, *, delay_s: float = 0.0) -> None:
        """Answer the next request with this value serialised as the assistant's JSON text."""
        self.queue_text(json.dumps(value), delay_s=delay_s)

    def queue_status(self, status: int, message: str = "scripted error", *, delay_s: float = 0.0,
                     headers: dict[str, str] | None = None) -> None:
        """Answer the next request with an error status, an OpenAI-style error body and extra `headers`."""
        body = {"error": {"message": message, "type": "scripted", "code": status}}
        self._push(ScriptedResponse(status, body, delay_s, headers))

    def _push(self, response: ScriptedResponse) -> None:
        with self._lock:
            self._queue.append(response)

    def _pop(self, request: dict[str, Any]) -> ScriptedResponse:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self._responder is not None:
            return ScriptedResponse(200, completion_body(self._responder(request)))
        return ScriptedResponse(500, {"error": {"message": "no scripted response", "type": "fake"}})

    @property
    def pending(self) -> int:
        """Queued responses not yet served."""
        with self._lock:
            return len(self._queue)

    # -- lifecycle (port, base_url, stop and the context manager: LoopbackServer) ----------------------

    def start(self) -> FakeOpenAIServer:
        """Bind and serve in a daemon thread."""
        server = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
                    self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode(errors="replace")}
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()}}
                    )
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                response = server._pop(body)
                if response.delay_s:
                    time.sleep(response.delay_s)
                self._send(response.status, response.body, response.headers)

        self._serve(Handler, self._port, "fake-openai")
        return self
