"""A stand-in for `python -m llama_cpp.server` in process-lifetime tests: same command line, no model.

Run as a module (`LocalLlamaServer(..., server_module="fake_llama_server")`, with tests/ on PYTHONPATH); it
serves `GET /v1/models` and answers every chat completion with "ok" until it is killed.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "fake-llama", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "fake-llama",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                 "finish_reason": "stop"}]})


def main() -> None:
    """Parse llama.cpp's server options (only host and port matter) and serve forever."""
    parser = argparse.ArgumentParser()
    for name in ("--model", "--n_ctx", "--n_threads"):
        parser.add_argument(name)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    HTTPServer((args.host, args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
