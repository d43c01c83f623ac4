"""The web UI's safety checks: loopback unless a token is given, tokens on every request, no path outside the
workspace, size- and type-checked uploads, clear JSON errors instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from scripted_planner import make_planner

from synthloop.agent.config import RunConfig
from synthloop.agent.web.safety import (
    MAX_UPLOAD_BYTES,
    UnsafeRequest,
    check_bind,
    check_run_id,
    inside,
    is_loopback,
    parse_spec_upload,
    sniff_image,
    token_matches,
)
from synthloop.agent.web.server import create_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
TOKEN = "s3cret-token-123"


def _replan(config: object, planner):  # the fallback reviser: plan request + message again
    return lambda spec, message: planner(f"{spec.request} {message}")


def client(workspace: Path, token: str | None = None) -> TestClient:
    """A client as the UI's own page: the server's address in Host, the session's CSRF token on every POST."""
    app = create_app(workspace, config=RunConfig(batch_size=4), planner_factory=lambda c: make_planner(c, None, None),
                     reviser_factory=_replan, token=token, port=8765)
    http = TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1:8765")
    if token is None:
        http.headers["X-Synthloop-CSRF"] = http.get("/api/session").json()["csrf"]
    return http


def upload(http: TestClient, path: str, content: object) -> object:
    """POST a file the way the page does: the raw bytes as application/octet-stream."""
    return http.post(path, content=content, headers={"Content-Type": "application/octet-stream"})


def wait_for(http: TestClient, run_id: str, status: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = http.get(f"/api/runs/{run_id}/state").json()
        if state["status"] == status:
            return state
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {status}: {state}")


# --- binding and tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_other_hosts_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(UnsafeRequest, match="--token"):
        check_bind(host, None)
    check_bind(host, TOKEN)
    with pytest.raises(UnsafeRequest, match="at least 8"):
        check_bind(host, "short")


def test_the_command_refuses_a_public_host_without_a_token() -> None:
    result = subprocess.run([sys.executable, "-m", "synthloop.agent.cli", "ui", "--host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: binding to 0.0.0.0") and "--token" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_token_matching() -> None:
    assert token_matches(None, {}, {})
    assert not token_matches(TOKEN, {}, {})
    assert token_matches(TOKEN, {"authorization": f"Bearer {TOKEN}"}, {})
    assert token_matches(TOKEN, {"x-synthloop-token": TOKEN}, {})
    assert token_matches(TOKEN, {}, {"synthloop_token": TOKEN})
    assert not token_matches(TOKEN, {"x-synthloop-token": TOKEN + "x"}, {"synthloop_token": "nope"})


def test_every_request_checks_the_token(tmp_path: Path) -> None:
    http = client(tmp_path / "ws", token=TOKEN)
    for path in ("/", "/api/runs", "/static/app.js", "/api/runs/x/state"):
        response = http.get(path)
        assert response.status_code == 401 and "token" in response.json()["error"]
    assert http.post("/api/runs", json={"request": "cups"}).status_code == 401
    assert http.post("/api/references", content=b"\x00" * (MAX_UPLOAD_BYTES + 10)).status_code == 401  # token first
    assert http.get("/api/runs", headers={"X-Synthloop-Token": TOKEN}).status_code == 200
    assert http.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    opened = http.get(f"/?token={TOKEN}", follow_redirects=False)  # sets the cookie, drops the token from the URL
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    assert "httponly" in opened.headers["set-cookie"].lower()
    assert http.get("/api/runs").status_code == 200  # the cookie now rides along
    assert client(tmp_path / "ws2", token=TOKEN).get("/?token=wrong-token").status_code == 401


# --- paths ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["..", "../etc", "a/b", "A", "-x", ".work", "x" * 81, ""])
def test_run_ids_are_strict(run_id: str) -> None:
    with pytest.raises(UnsafeRequest):
        check_run_id(run_id)


def test_inside_refuses_escapes_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert inside(root, "run", "spec.json") == (root / "run" / "spec.json").resolve()
    for parts in (("..", "outside"), ("/etc/passwd",), ("link", "x"), ("run", "..", "..", "x")):
        with pytest.raises(UnsafeRequest) as caught:
            inside(root, *parts)
        assert caught.value.status == 403


def test_no_path_outside_the_workspace_is_served(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = client(workspace)
    run_id = http.post("/api/runs", json={"request": "3 cups"}).json()["id"]
    wait_for(http, run_id, "waiting")
    assert http.post(f"/api/runs/{run_id}/reply", json={"action": "approve"}).status_code == 200
    wait_for(http, run_id, "done")
    (tmp_path / "secret.json").write_text("{}")
    (workspace / "escape").symlink_to(tmp_path)
    for path in (
        "/api/runs/..%2F..%2Fetc/state", "/api/runs/../secret/state", f"/api/runs/{run_id}/overlay/kept/..%2Fspec.png",
        f"/api/runs/{run_id}/overlay/kept/....png", f"/api/runs/{run_id}/overlay/..%2F..%2Fx/000000.png",
        "/api/runs/escape/state", "/static/..%2F..%2F..%2Fpyproject.toml", "/static/../server.py",
    ):
        response = http.get(path)
        assert response.status_code in (400, 403, 404), (path, response.status_code)
        assert "Traceback" not in response.text and "[tool" not in response.text
    assert http.get(f"/api/runs/{run_id}/overlay/kept/000000.png").headers["content-type"] == "image/png"
    bad_vote = http.post(f"/api/runs/{run_id}/labels", json={"sample": "../../secret", "label": "accept"})
    assert bad_vote.status_code == 404 and not (workspace / "human_labels.jsonl").exists()


# --- uploads -------------------------------------------------------------------------------------------------


def test_sniffing_and_spec_parsing() -> None:
    assert sniff_image(PNG) == "png" and sniff_image(b"\xff\xd8\xff\xe0rest") == "jpeg"
    for data in (b"GIF89a....", b"<svg/>", b"%PDF-1.7"):
        with pytest.raises(UnsafeRequest):
            sniff_image(data)
    assert parse_spec_upload(b'{"n_images": 3}') == {"n_images": 3}
    assert parse_spec_upload(b"n_images: 3\n") == {"n_images": 3}
    for data in (b"- a\n- b\n", b"\xff\xfe\x00bad", b"a: [unclosed"):
        with pytest.raises(UnsafeRequest):
            parse_spec_upload(data)


def test_uploads_are_size_limited_and_type_checked(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = client(workspace)
    too_big = upload(http, "/api/references", PNG + b"\x00" * MAX_UPLOAD_BYTES)
    assert too_big.status_code == 413 and "too large" in too_big.json()["error"]

    def chunks():
        for _ in range(11):
            yield b"\x00" * (1024 * 1024)

    chunked = upload(http, "/api/references", chunks())  # no Content-Length: counted while read
    assert chunked.status_code == 413
    not_image = upload(http, "/api/references", b"#!/bin/sh\nrm -rf /\n")
    assert not_image.status_code == 415 and "PNG or JPEG" in not_image.json()["error"]
    stored = upload(http, "/api/references", PNG).json()
    assert (workspace / "references" / stored["name"]).read_bytes() == PNG
    assert upload(http, "/api/spec-upload", b"objects: [").status_code == 415
    invalid = upload(http, "/api/spec-upload", b"objects: []\n")
    assert invalid.status_code == 400 and "objects" in invalid.json()["error"]
    assert not [p for p in workspace.iterdir() if p.name != "references"]  # nothing started for bad uploads
    run_id = upload(http, "/api/spec-upload", b"objects: [{name: cup}]\nn_images: 2\nwidth: 64\nheight: 64\n")
    assert wait_for(http, run_id.json()["id"], "waiting")["pending"]["spec"]["n_images"] == 2


def test_errors_are_json_lines_not_tracebacks(tmp_path: Path) -> None:
    http = client(tmp_path / "ws")
    assert http.get("/api/runs/nope/state").json() == {"error": "no run 'nope' in the workspace"}
    not_json = http.post("/api/runs", content=b"not json", headers={"Content-Type": "application/json"})
    assert not_json.json()["error"] == "the request body must be JSON (UTF-8)"
    assert http.post("/api/runs", json={"request": "  "}).status_code == 400
    assert http.get("/no/such/page").status_code == 404
    run_id = http.post("/api/runs", json={"request": "what?"}).json()["id"]
    state = wait_for(http, run_id, "waiting")
    assert state["pending"]["questions"]
    refused = http.post(f"/api/runs/{run_id}/reply", json={"action": "approve"})
    assert refused.status_code == 400 and refused.json()["error"].startswith("answer the question first")
    bad_edit = http.post(f"/api/runs/{run_id}/reply", json={"action": "edit", "spec": {"objects": [], "n_images": 1}})
    assert bad_edit.status_code == 400 and "edited spec is invalid" in bad_edit.json()["error"]
    assert http.get(f"/api/runs/{run_id}/download.zip").status_code == 409
    assert http.post(f"/api/runs/{run_id}/reply", json={"action": "cancel"}).status_code == 200
    assert wait_for(http, run_id, "cancelled")["events"][-1]["text"].startswith("Cancelled")
    assert http.post(f"/api/runs/{run_id}/reply", json={"text": "yes"}).status_code == 409
