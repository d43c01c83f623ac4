"""The web UI's safety checks, kept free of web-framework imports so they are unit-tested directly.

- Binding: loopback by default; any other host needs a token (`--token` or SYNTHLOOP_UI_TOKEN).
- Token: when set, every request must carry it: `Authorization: Bearer T`, `X-Synthloop-Token: T`, or the
  `synthloop_token` cookie (set by opening any page once with `?token=T`). Compared in constant time.
- Paths: run ids match a strict pattern; every path built from a request is resolved (symlinks followed)
  and must stay inside the workspace.
- Uploads: at most `MAX_UPLOAD_BYTES`; images must be PNG or JPEG by their magic bytes, spec files must
  parse as YAML/JSON mappings that validate as a TaskSpec.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

TOKEN_ENV = "SYNTHLOOP_UI_TOKEN"
TOKEN_COOKIE = "synthloop_token"
TOKEN_HEADER = "x-synthloop-token"
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
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UnsafeRequest(f"the spec file is neither JSON nor YAML: {str(exc).splitlines()[0]}", 415) from exc
    if not isinstance(value, dict):
        raise UnsafeRequest("the spec file must hold a mapping of spec fields", 415)
    return value
