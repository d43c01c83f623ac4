"""The web UI in its default mode (loopback, no token) against a hostile web page, one test per hole.

On the code before these checks (9ef6410: `git show 9ef6410:agent/web/server.py`) every test here fails: the Host
header was never checked (a DNS-rebinding page downloaded the dataset), JSON was read whatever its Content-Type
(a cross-site `text/plain` form started and approved runs), nothing tied a POST to the UI's own page (no Origin
or CSRF check), run ids were `time-slug` (guessable, and simultaneous identical requests collided: five gave
three ids and one run never moved), and nothing capped concurrent runs. `_app` passes only the options the
loaded `create_app` knows, so the same file runs against that code to show it.
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scripted_planner import make_planner

from synthloop.agent.config import RunConfig
from synthloop.agent.web.server import create_app

BASE = "http://127.0.0.1:8765"
EVIL = "http://evil.example"


def _replan(config: object, planner: Any) -> Any:
    return lambda spec, message: planner(f"{spec.request} {message}")


def _app(workspace: Path, **options: Any) -> Any:
    wanted = {"config": RunConfig(batch_size=4), "planner_factory": lambda c: make_planner(c, None, None),
              "reviser_factory": _replan, "port": 8765, **options}
    known = inspect.signature(create_app).parameters
    return create_app(workspace, **{k: v for k, v in wanted.items() if k in known})


def _page(workspace: Path, **options: Any) -> TestClient:
    """The UI's own page: right Host, the session's CSRF token on every POST (as app.js sends it)."""
    http = TestClient(_app(workspace, **options), raise_server_exceptions=False, base_url=BASE)
    session = http.get("/api/session")
    http.headers["X-Synthloop-CSRF"] = session.json().get("csrf", "") if session.status_code == 200 else ""
    return http


def _wait(http: TestClient, run_id: str, status: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = http.get(f"/api/runs/{run_id}/state").json()
        if state.get("status") == status:
            return state
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {status}: {state}")


def _finished_run(http: TestClient) -> str:
    run_id = http.post("/api/runs", json={"request": "3 cups"}).json()["id"]
    _wait(http, run_id, "waiting")
    assert http.post(f"/api/runs/{run_id}/reply", json={"action": "approve"}).status_code == 200
    _wait(http, run_id, "done")
    return run_id


def _run_folders(workspace: Path) -> list[Path]:
    return [p for p in workspace.iterdir() if p.is_dir() and p.name != "references"] if workspace.is_dir() else []


# --- DNS rebinding: the Host header ----------------------------------------------------------------------------


def test_a_foreign_host_header_gets_nothing(tmp_path: Path) -> None:
    """A page on attacker.com whose DNS name was rebound to 127.0.0.1 talks to the UI with `Host: attacker.com`."""
    http = _page(tmp_path / "ws")
    run_id = _finished_run(http)
    assert http.get(f"/api/runs/{run_id}/download.zip").status_code == 200  # the page itself may download
    for host in ("attacker.com", "attacker.com:8765", "127.0.0.1:9999", "localhost.attacker.com:8765", ""):
        for path in (f"/api/runs/{run_id}/download.zip", "/api/runs", "/", f"/api/runs/{run_id}/state"):
            response = http.get(path, headers={"Host": host})
            assert response.status_code == 403, (host, path, response.status_code)
            assert response.headers["content-type"].startswith("application/json")
    for host in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "[::1]:8765"):
        assert http.get("/api/runs", headers={"Host": host}).status_code == 200, host


def test_the_configured_host_is_allowed(tmp_path: Path) -> None:
    http = TestClient(_app(tmp_path / "ws", host="ui.lan", token="s3cret-token-123"), base_url="http://ui.lan:8765",
                      raise_server_exceptions=False)
    headers = {"X-Synthloop-Token": "s3cret-token-123"}
    assert http.get("/api/runs", headers=headers).status_code == 200
    assert http.get("/api/runs", headers={**headers, "Host": "other.lan:8765"}).status_code == 403


# --- cross-site POSTs: content type, origin, CSRF token ---------------------------------------------------------


def test_a_cross_site_text_plain_form_starts_nothing(tmp_path: Path) -> None:
    """An HTML form on any site can POST `text/plain` (no CORS preflight): it must neither start nor approve a run."""
    workspace = tmp_path / "ws"
    http = _page(workspace)
    # The victim's browser: it may send the UI's cookies along (worst case), but a form sets no custom header.
    evil = TestClient(http.app, raise_server_exceptions=False, base_url=BASE, cookies=http.cookies)
    form = {"Content-Type": "text/plain", "Origin": "null"}
    started = evil.post("/api/runs", content=b'{"request": "3 cups"}', headers=form)
    assert started.status_code in (403, 415) and not _run_folders(workspace)
    run_id = http.post("/api/runs", json={"request": "3 cups"}).json()["id"]
    _wait(http, run_id, "waiting")
    approved = evil.post(f"/api/runs/{run_id}/reply", content=b'{"action": "approve"}', headers=form)
    assert approved.status_code in (403, 415)
    assert http.get(f"/api/runs/{run_id}/state").json()["status"] == "waiting"


def test_json_is_read_only_with_the_json_content_type(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = http.post("/api/runs", content=b'{"request": "3 cups"}', headers=headers)
        assert response.status_code == 415 and "application/json" in response.json()["error"], content_type
    assert not _run_folders(workspace)
    assert http.post("/api/runs", content=b'{"request": "3 cups"}',
                     headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Origin": "null"}, {"Referer": f"{EVIL}/page"},
                                     {"Origin": "http://127.0.0.1:9999"}, {"Origin": f"{EVIL}", "Referer": BASE}])
def test_state_changing_requests_from_another_origin_are_refused(tmp_path: Path, headers: dict) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    response = http.post("/api/runs", json={"request": "3 cups"}, headers=headers)
    assert response.status_code == 403 and "cross-origin" in response.json()["error"]
    assert not _run_folders(workspace)
    assert http.post("/api/runs", json={"request": "3 cups"}, headers={"Origin": BASE}).status_code == 200


def test_every_state_changing_request_needs_the_session_csrf_token(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    run_id = _finished_run(http)
    posts = [("/api/runs", {"json": {"request": "3 cups"}}),
             (f"/api/runs/{run_id}/labels", {"json": {"sample": "000000", "label": "accept"}}),
             (f"/api/runs/{run_id}/resume", {}),
             (f"/api/runs/{run_id}/reply", {"json": {"action": "approve"}}),
             ("/api/references", {"content": b"\x89PNG\r\n\x1a\n", "headers": {"Content-Type": "image/png"}}),
             ("/api/spec-upload", {"content": b"objects: [{name: cup}]\n",
                                   "headers": {"Content-Type": "application/octet-stream"}})]
    other = _page(tmp_path / "other")  # a token issued to another session (another server's key)
    for token in (None, "", "0" * 64, other.headers["X-Synthloop-CSRF"]):
        for path, kwargs in posts:
            headers = {**kwargs.get("headers", {}), **({"X-Synthloop-CSRF": token} if token is not None else {})}
            bare = TestClient(http.app, raise_server_exceptions=False, base_url=BASE, cookies=http.cookies)
            response = bare.post(path, **{**kwargs, "headers": headers})
            assert response.status_code == 403 and "CSRF" in response.json()["error"], (path, token)
    assert len(_run_folders(workspace)) == 1 and not (workspace / "references").exists()
    assert not (workspace / run_id / "human_labels.jsonl").exists()


def test_a_token_in_a_header_needs_no_csrf_token(tmp_path: Path) -> None:
    """Scripts with `--token` send it in a header, which no other site can make a browser send."""
    http = TestClient(_app(tmp_path / "ws", token="s3cret-token-123"), base_url=BASE, raise_server_exceptions=False)
    response = http.post("/api/runs", json={"request": "3 cups"}, headers={"X-Synthloop-Token": "s3cret-token-123"})
    assert response.status_code == 200
    opened = http.get("/?token=s3cret-token-123", follow_redirects=False)  # the page: token in a cookie
    assert opened.status_code == 303
    assert http.post("/api/runs", json={"request": "3 cups"}).status_code == 403  # cookie only: CSRF applies


# --- run ids and concurrent runs ------------------------------------------------------------------------------


def test_run_ids_are_not_guessable(tmp_path: Path) -> None:
    http = _page(tmp_path / "ws", max_active_runs=4)
    ids = [http.post("/api/runs", json={"request": "3 cups"}).json()["id"] for _ in range(2)]
    for run_id in ids:
        stamp_and_slug = re.fullmatch(r"\d{8}-\d{6}-3-cups-([0-9a-f]{16})", run_id)
        assert stamp_and_slug, f"{run_id} has no 64-bit random part"
    assert ids[0] != ids[1]


def _simultaneous_posts(http: TestClient, n: int) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def post(i: int) -> None:
        barrier.wait()
        results[i] = http.post("/api/runs", json={"request": "3 cups"})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_simultaneous_identical_requests_never_share_a_run(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace, max_active_runs=5)
    responses = _simultaneous_posts(http, 5)
    assert [r.status_code for r in responses] == [200] * 5
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 5 and len(_run_folders(workspace)) == 5
    for run_id in ids:  # none stuck: each was planned and asks for approval
        state = _wait(http, run_id, "waiting")
        assert state["pending"]["spec"]["objects"][0]["name"] == "cup"


def test_concurrent_runs_are_capped(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)  # default cap: 2
    responses = _simultaneous_posts(http, 5)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 429, 429, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert "limit is 2" in refused.json()["error"]
    accepted = [r.json()["id"] for r in responses if r.status_code == 200]
    assert len(_run_folders(workspace)) == 2
    for run_id in accepted:
        _wait(http, run_id, "waiting")
    assert http.post(f"/api/runs/{accepted[0]}/reply", json={"action": "cancel"}).status_code == 200
    _wait(http, accepted[0], "cancelled")
    assert http.post("/api/runs", json={"request": "3 cups"}).status_code == 200  # a slot is free again


# --- hostile bodies --------------------------------------------------------------------------------------------


def test_hostile_bodies_get_one_line_errors(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    json_type = {"Content-Type": "application/json"}
    cases = [b'{"request": "cups \xff\xfe"}', b"\xff\xfe\x00{", b"[" * 200_000 + b"]" * 200_000,
             b'{"request": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"]
    for body in cases:
        response = http.post("/api/runs", content=body, headers=json_type)
        assert response.status_code == 400, (body[:20], response.status_code)
        error = response.json()["error"]
        assert "\n" not in error and "Traceback" not in error
    deep_spec = b"objects: " + b"[" * 200_000 + b"]" * 200_000 + b"\n"
    response = http.post("/api/spec-upload", content=deep_spec, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 415 and "nested too deeply" in response.json()["error"]
    assert not _run_folders(workspace)
