"""The lifecycle the tests' fake HTTP endpoints share: a handler served on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (test output stays readable)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """Base of a fake endpoint: `start()` builds its handler and calls `_serve`; `stop()`; a context manager."""

    _httpd: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        """Bind and serve in a daemon thread."""
        raise NotImplementedError

    def _serve(self, handler: type[BaseHTTPRequestHandler], port: int, thread_name: str) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=thread_name,
                         daemon=True).start()

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        assert self._httpd is not None, f"{type(self).__name__} not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
