"""The web UI's safety checks, kept free of web-framework imports so they are unit-tested directly.

- Binding: loopback by default; any other host needs a token (`--token` or SYNTHLOOP_UI_TOKEN).
- Host header: every request must name this server (127.0.0.1, localhost or [::1] with the port, or the
  configured host), so a page on another name resolved to 127.0.0.1 (DNS rebinding) gets nothing.
- Token: when set, every request must carry it: `Authorization: Bearer T`, `X-Synthloop-Token: T`, or the
  `synthloop_token` cookie (set by opening any page once with `?token=T`). Compared in constant time.
- State-changing requests (every method but GET/HEAD/OPTIONS): an `Origin` (or, without it, a `Referer`) must
  be this server; a per-session CSRF token must come in the `X-Synthloop-CSRF` header (the page gets it from
  `GET /api/session`, which sets the session cookie it is bound to: an HMAC of the session id with a key that
  lives as long as the server); JSON bodies need `Content-Type: application/json`, uploads a type no HTML form
  can send. A request authenticated by the token in a header (not a cookie) needs no CSRF token.
- Paths: run ids match a strict pattern; every path built from a request is resolved (symlinks followed)
  and must stay inside the workspace.
- Uploads: at most `MAX_UPLOAD_BYTES`; images must be PNG or JPEG by their magic bytes, spec files must
  parse as YAML/JSON mappings that validate as a TaskSpec.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TOKEN_ENV = "SYNTHLOOP_UI_TOKEN"
TOKEN_COOKIE = "synthloop_token"
TOKEN_HEADER = "x-synthloop-token"
CSRF_HEADER = "x-synthloop-csrf"
SESSION_COOKIE = "synthloop_session_{port}"  # cookies ignore ports: one per server port
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
SAMPLE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class UnsafeRequest(ValueError):
    """A request the UI refuses; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise UnsafeRequest(f"binding to {host} exposes the UI beyond this machine: give --token "
                            f"(or set {TOKEN_ENV}), or bind to 127.0.0.1")
    if token is not None and len(token) < 8:
        raise UnsafeRequest("the UI token must be at least 8 characters long")


def token_matches(expected: str | None, headers: dict[str, str], cookies: dict[str, str]) -> bool:
    """Whether a request carries the expected token (always True when no token is configured)."""
    if not expected:
        return True
    candidates = [headers.get(TOKEN_HEADER, ""), cookies.get(TOKEN_COOKIE, "")]
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        candidates.append(auth[7:].strip())
    return any(c and hmac.compare_digest(c.encode(), expected.encode()) for c in candidates)


def _host_name(host: str) -> str:
    """A host as it appears in a Host header: IPv6 addresses in brackets, lower case."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def allowed_hosts(bind_host: str, port: int) -> frozenset[str]:
    """The Host header values this server answers: loopback names and the configured host, with the port (and
    without it on port 80). A wildcard bind (0.0.0.0, ::) adds this machine's name and addresses."""
    names = {*LOOPBACK_NAMES, _host_name(bind_host)}
    if bind_host.strip("[]") in ("0.0.0.0", "::"):
        machine = socket.gethostname()
        names |= {machine.lower(), socket.getfqdn().lower()}
        with contextlib.suppress(OSError):  # a machine whose name does not resolve: its name still counts
            names |= {_host_name(str(info[4][0])) for info in socket.getaddrinfo(machine, None)}
    with_port = {f"{name}:{port}" for name in names}
    return frozenset(with_port | (names if port == 80 else set()))


def check_host(header: str | None, allowed: frozenset[str]) -> None:
    """Refuse a request whose Host header does not name this server (DNS rebinding)."""
    if (header or "").strip().lower() not in allowed:
        raise UnsafeRequest(f"host {str(header)[:100]!r} is not this server's name; open the UI at the address "
                            "`synthloop ui` printed", 403)


def check_origin(origin: str | None, referer: str | None, allowed: frozenset[str]) -> None:
    """A state-changing request from a browser must come from a page of this server: its `Origin`, or when a
    browser sent none, its `Referer`. Requests with neither (curl, scripts) pass; the CSRF token still applies."""
    source = origin if origin is not None else referer
    if source is None:
        return
    parts = urlsplit(source.strip())
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in allowed:
        raise UnsafeRequest(f"cross-origin request refused (from {source[:100]!r})", 403)


def csrf_token(key: bytes, session: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 of the session id with the server's key."""
    return hmac.new(key, session.encode(), hashlib.sha256).hexdigest()


def check_csrf(key: bytes, session: str | None, given: str | None) -> None:
    """Refuse a state-changing request without the CSRF token of its session cookie."""
    if not session or not given or not hmac.compare_digest(csrf_token(key, session).encode(), given.encode()):
        raise UnsafeRequest("missing or stale CSRF token: reload the page", 403)


def media_type(content_type: str | None) -> str:
    """'application/json' from 'application/json; charset=utf-8'."""
    return (content_type or "").split(";")[0].strip().lower()


def check_json_type(content_type: str | None) -> None:
    """JSON bodies are read only when they say so (an HTML form cannot send this type across sites)."""
    if media_type(content_type) != "application/json":
        raise UnsafeRequest("send the body as JSON with Content-Type: application/json", 415)


def check_upload_type(content_type: str | None) -> None:
    """Uploads come as raw bytes (application/octet-stream or the file's own type), never as a form."""
    if media_type(content_type) in FORM_CONTENT_TYPES or not media_type(content_type):
        raise UnsafeRequest("send the file as the raw body (Content-Type: application/octet-stream)", 415)


def check_unicode(value: Any) -> Any:
    """`value` (parsed JSON) if all its text is valid Unicode: JSON may escape lone surrogates (\\ud800), which no
    file or answer can hold."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafeRequest("the request body holds text that is not valid Unicode (a lone surrogate)") from exc
    return value


def check_run_id(run_id: str) -> str:
    """A run id as given, if it matches the strict pattern."""
    if not RUN_ID.fullmatch(run_id or ""):
        raise UnsafeRequest(f"invalid run id {run_id[:80]!r}", 404)
    return run_id


def check_sample_name(name: str) -> str:
    """A sample file stem (e.g. 000012 or 000012-a1), if it matches the strict pattern."""
    if not SAMPLE_NAME.fullmatch(name or ""):
        raise UnsafeRequest(f"invalid sample name {name[:80]!r}", 404)
    return name


def inside(root: Path, *parts: str) -> Path:
    """`root/parts…` resolved, refused unless it stays inside `root` (after following symlinks)."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base):
        raise UnsafeRequest("path outside the workspace refused", 403)
    return target


def sniff_image(data: bytes) -> str:
    """'png' or 'jpeg' by magic bytes; anything else is refused."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    raise UnsafeRequest("not a PNG or JPEG image (checked by content, not by name)", 415)


def check_size(data: bytes, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """`data` when it is not empty and at most `limit` bytes."""
    if len(data) > limit:
        raise UnsafeRequest(f"upload too large: {len(data)} bytes, the limit is {limit}", 413)
    if not data:
        raise UnsafeRequest("empty upload")
    return data


def parse_spec_upload(data: bytes) -> dict[str, Any]:
    """A spec file's mapping: JSON or YAML text (UTF-8) holding a mapping; validation is the caller's."""
    import yaml

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeRequest("the spec file is not UTF-8 text", 415) from exc
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise UnsafeRequest("the spec file is nested too deeply", 415) from exc
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except RecursionError as exc:
            raise UnsafeRequest("the spec file is nested too deeply", 415) from exc
        except yaml.YAMLError as exc:
            raise UnsafeRequest(f"the spec file is neither JSON nor YAML: {str(exc).splitlines()[0]}", 415) from exc
    if not isinstance(value, dict):
        raise UnsafeRequest("the spec file must hold a mapping of spec fields", 415)
    return check_unicode(value)
