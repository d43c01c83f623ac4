"""`synthloop ui`: the local web chat (FastAPI + uvicorn, static HTML/JS/CSS, no build step).

HTTP API (JSON; every error is `{"error": "…"}` with a 4xx/5xx status, never a traceback):
    GET  /                                   the app (static/index.html)
    GET  /api/session                        {"csrf": T}: the session's CSRF token (sets the session cookie)
    GET  /api/runs                           runs of the workspace, newest first
    POST /api/runs {"request": "…"}          start a run from a request (planned in a worker thread)
    POST /api/spec-upload                    start a run from a YAML/JSON spec file (raw body, ≤ 10 MB)
    POST /api/references                     store a PNG/JPEG reference image in WORKSPACE/references/
    DELETE /api/references                   delete the uploaded reference images (runs keep their snapshots)
    POST /api/reference-data?name=F.zip      a reference COCO set (.zip: one COCO JSON and its images) → active
    POST /api/assets?name=F.zip              a cut-out set (.zip: one folder per class of PNGs) → active
    DELETE /api/reference-data | /api/assets deactivate that set
    GET  /api/user-data                      the active sets, the reference images and how the next run uses them
    GET  /api/runs/{id}/state?since=N        status, counters, pending question/spec, conversation since N
    POST /api/runs/{id}/reply                {"text": …} | {"action": "approve"|"cancel"|"edit", "spec": …}
    POST /api/runs/{id}/resume               continue a stopped run from its checkpoint
    GET  /api/runs/{id}/samples?kind=kept|rejected&offset=&limit=
    GET  /api/runs/{id}/overlay/{kind}/{name}.png   a sample with boxes, masks and labels drawn
    GET  /api/runs/{id}/pair                 two kept samples for an A/B vote
    POST /api/runs/{id}/labels               {"sample", "label"} or {"a", "b", "winner"} → human_labels.jsonl
    GET  /api/runs/{id}/agreement            the critic's agreement with those votes (evals/critic_agreement.py)
    GET  /api/runs/{id}/download.zip         the exported dataset
Polling (`state?since=N`, every ~0.5 s) streams progress; handlers only read files and in-memory state, so
they never wait for a graph, which runs in its run's worker thread (see `runs.py`).
Every request must name this server in its Host header; every POST must come from its pages (Origin/Referer)
and carry the session's CSRF token in `X-Synthloop-CSRF`; JSON bodies need `Content-Type: application/json`
(see `safety.py`). At most `max_active_runs` runs are active at once; more answer 429.
Uploaded zips are extracted with every path confined and bounded in size (`zips.py`); how runs use the user's
data, and why reference images are snapshotted per run, is in `user_data.py`.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from synthloop.agent.errors import UserInputError
from synthloop.agent.web import gallery
from synthloop.agent.web.runs import PlannerFactory, ReviserFactory, RunHandle, RunManager
from synthloop.agent.web.safety import (
    CSRF_HEADER,
    MAX_UPLOAD_BYTES,
    SAFE_METHODS,
    SESSION_COOKIE,
    TOKEN_COOKIE,
    UnsafeRequest,
    allowed_hosts,
    check_csrf,
    check_host,
    check_json_type,
    check_origin,
    check_size,
    check_unicode,
    check_upload_type,
    csrf_token,
    inside,
    parse_spec_upload,
    sniff_image,
    token_matches,
)
from synthloop.agent.web.user_data import UserData, upload_name
from synthloop.agent.web.zips import DEFAULT_ZIP_LIMITS, ZipLimits

logger = logging.getLogger(__name__)


def _static_dir() -> Path:
    return Path(str(resources.files("synthloop.agent.web") / "static"))


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes, by header or by counting (chunked uploads).

    The body is read here first (at most `limit` bytes are ever held) and replayed to the app; paths in
    `larger` (zip uploads) have their own limit.
    """

    def __init__(self, app: Any, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app, self.limit, self.larger = app, limit, dict(larger or {})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope.get("path", ""), self.limit)
        too_large = JSONResponse({"error": f"request body too large (limit {limit} bytes)"}, 413)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await too_large(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > limit:
                return await too_large(scope, receive, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _state(handle: RunHandle, since: int) -> dict[str, Any]:
    with handle.lock:
        events = handle.events[since:]
        pending = handle.pending
    return {
        "id": handle.run_id, "status": handle.status,
        "alive": handle.alive, "error": handle.error, "kept": handle.kept, "rejected": handle.rejected,
        "total": handle.total, "pending": pending, "spec": handle.last_spec, "events": events,
        "next": since + len(events), "exported": (handle.out_dir / "manifest.jsonl").is_file(),
        "labels": gallery.count_labels(handle.out_dir),
    }


def _summary(handle: RunHandle) -> dict[str, Any]:
    first = next((e["text"] for e in handle.events if e.get("role") == "user"), handle.run_id)
    return {"id": handle.run_id, "title": first[:80], "status": handle.status, "kept": handle.kept,
            "total": handle.total}


def create_app(
    workspace: Path,
    *,
    config: Any,
    planner_factory: PlannerFactory,
    reviser_factory: ReviserFactory,
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    max_active_runs: int = 2,
    zip_limits: ZipLimits = DEFAULT_ZIP_LIMITS,
) -> FastAPI:
    """The web app over one workspace folder, served at `host`:`port` (the names its Host headers may carry);
    `token` (if set) is required on every request; at most `max_active_runs` runs are active at once; uploaded
    zips are bounded by `zip_limits`."""
    user_data = UserData(Path(workspace), config, zip_limits)
    manager = RunManager(workspace, config, planner_factory, reviser_factory, max_active=max_active_runs,
                         user_data=user_data)
    app = FastAPI(title="synthloop", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.manager = manager
    zip_paths = ("/api/reference-data", "/api/assets")
    app.add_middleware(BodyLimit, limit=MAX_UPLOAD_BYTES + 1024,  # inside the checks below (added after it)
                       larger={path: zip_limits.max_bytes + 1024 for path in zip_paths})
    hosts = allowed_hosts(host, port)
    csrf_key = secrets.token_bytes(32)  # lives as long as the server: a restart asks the page for a new token
    session_cookie = SESSION_COOKIE.format(port=port)

    @app.middleware("http")
    async def check_request(request: Request, call_next: Any) -> Response:
        try:
            check_host(request.headers.get("host"), hosts)
        except UnsafeRequest as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        given = request.query_params.get("token")
        if token and given is not None and token_matches(token, {"x-synthloop-token": given}, {}):
            url = request.url.remove_query_params("token")
            response = RedirectResponse(str(url.path) + (f"?{url.query}" if url.query else ""), 303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response
        if not token_matches(token, dict(request.headers), dict(request.cookies)):
            return JSONResponse({"error": "a valid token is required: open the UI once with ?token=…"}, 401)
        if request.method not in SAFE_METHODS:
            header_auth = bool(token) and token_matches(token, dict(request.headers), {})
            try:
                check_origin(request.headers.get("origin"), request.headers.get("referer"), hosts)
                if not header_auth:  # a token in a header cannot be forged by another site; a cookie can
                    check_csrf(csrf_key, request.cookies.get(session_cookie), request.headers.get(CSRF_HEADER))
            except UnsafeRequest as exc:
                return JSONResponse({"error": str(exc)}, exc.status)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(UnsafeRequest)
    async def unsafe(request: Request, exc: UnsafeRequest) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, exc.status)

    @app.exception_handler(UserInputError)
    async def user_error(request: Request, exc: UserInputError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, 400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []))
        return JSONResponse({"error": f"bad request: {where} {first.get('msg', '')}".strip()}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("error serving %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"}, 500)

    async def _json(request: Request) -> dict[str, Any]:
        check_json_type(request.headers.get("content-type"))
        try:
            body = await request.json()
        except RecursionError as exc:
            raise UnsafeRequest("the request body is nested too deeply") from exc
        except ValueError as exc:  # not JSON, or not UTF-8
            raise UnsafeRequest("the request body must be JSON (UTF-8)") from exc
        check_unicode(body)
        if not isinstance(body, dict):
            raise UnsafeRequest("the request body must be a JSON object")
        return body

    async def _upload(request: Request, limit: int = MAX_UPLOAD_BYTES) -> bytes:
        check_upload_type(request.headers.get("content-type"))
        return check_size(await request.body(), limit)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(_static_dir() / "index.html", media_type="text/html")

    @app.get("/api/session")
    def session(request: Request) -> Response:
        current = request.cookies.get(session_cookie) or ""
        session_id = current if 20 <= len(current) <= 100 else secrets.token_urlsafe(32)
        response = JSONResponse({"csrf": csrf_token(csrf_key, session_id)})
        if session_id != current:
            response.set_cookie(session_cookie, session_id, httponly=True, samesite="strict")
        return response

    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        return {"runs": [_summary(h) for h in manager.list()], "workspace": str(manager.workspace)}

    @app.post("/api/runs")
    async def new_run(request: Request) -> dict[str, Any]:
        text = str((await _json(request)).get("request", "")).strip()
        if not text:
            raise UnsafeRequest("the request is empty: describe the images you want")
        return {"id": manager.create(request=text[:4000]).run_id}

    @app.post("/api/spec-upload")
    async def spec_upload(request: Request) -> dict[str, Any]:
        from pydantic import ValidationError

        from synthloop.agent.specfile import describe_validation_error
        from synthloop.tools.types import TaskSpec

        data = parse_spec_upload(await _upload(request))
        try:
            spec = TaskSpec.model_validate(data)
        except ValidationError as exc:
            raise UnsafeRequest(describe_validation_error(exc, "invalid spec file")) from exc
        return {"id": manager.create(spec=spec).run_id}

    @app.post("/api/references")
    async def reference_upload(request: Request) -> dict[str, Any]:
        import hashlib

        from synthloop.tools.io import atomic_write_bytes

        data = await _upload(request)
        kind = sniff_image(data)
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{'png' if kind == 'png' else 'jpg'}"
        atomic_write_bytes(inside(manager.workspace, "references", name), data)
        status = user_data.status()
        return {"name": name, "bytes": len(data), "type": kind, "use": status["references"]["use"],
                "warning": status["references"]["warning"], "count": status["references"]["count"]}

    @app.delete("/api/references")
    def clear_references() -> dict[str, Any]:
        deleted = user_data.clear_reference_images()
        return {"deleted": deleted, **user_data.status()}

    @app.get("/api/user-data")
    def user_data_status() -> dict[str, Any]:
        return user_data.status()

    @app.post("/api/reference-data")
    async def reference_data_upload(request: Request, name: str = "") -> dict[str, Any]:
        data = await _upload(request, zip_limits.max_bytes)
        stored = await run_in_threadpool(user_data.store_reference, data, upload_name(name))
        return {"set": stored, **user_data.status()}

    @app.post("/api/assets")
    async def assets_upload(request: Request, name: str = "") -> dict[str, Any]:
        data = await _upload(request, zip_limits.max_bytes)
        stored = await run_in_threadpool(user_data.store_assets, data, upload_name(name))
        return {"set": stored, **user_data.status()}

    @app.delete("/api/reference-data")
    def clear_reference_data() -> dict[str, Any]:
        user_data.clear("reference")
        return user_data.status()

    @app.delete("/api/assets")
    def clear_assets() -> dict[str, Any]:
        user_data.clear("assets")
        return user_data.status()

    @app.get("/api/runs/{run_id}/state")
    def run_state(run_id: str, since: int = 0) -> dict[str, Any]:
        return _state(manager.get(run_id), max(0, since))

    @app.post("/api/runs/{run_id}/reply")
    async def reply(run_id: str, request: Request) -> dict[str, Any]:
        return {"reply": manager.get(run_id).submit(await _json(request))}

    @app.post("/api/runs/{run_id}/resume")
    def resume(run_id: str) -> dict[str, Any]:
        return {"id": manager.resume(run_id).run_id}

    @app.get("/api/runs/{run_id}/samples")
    def samples(run_id: str, kind: str = "kept", offset: int = 0, limit: int = 60) -> dict[str, Any]:
        return gallery.list_samples(manager.get(run_id).out_dir, run_id, kind, offset, limit)

    @app.get("/api/runs/{run_id}/overlay/{kind}/{name}.png")
    def overlay(run_id: str, kind: str, name: str) -> Response:
        png = gallery.overlay_png(manager.get(run_id).out_dir, kind, name)
        return Response(png, media_type="image/png")

    @app.get("/api/runs/{run_id}/pair")
    def pair(run_id: str) -> dict[str, Any]:
        return gallery.random_pair(manager.get(run_id).out_dir, run_id)

    @app.post("/api/runs/{run_id}/labels")
    async def labels(run_id: str, request: Request) -> dict[str, Any]:
        out_dir = manager.get(run_id).out_dir
        row = gallery.label_row(out_dir, await _json(request))
        gallery.append_label(out_dir, row)
        return {"row": row, "count": gallery.count_labels(out_dir)}

    @app.get("/api/runs/{run_id}/agreement")
    def agreement(run_id: str) -> dict[str, Any]:
        from synthloop.evals.critic_agreement import format_report, json_safe, run_dir_agreement

        report = run_dir_agreement(manager.get(run_id).out_dir, rounds=300)
        return json_safe({**report.to_dict(), "text": format_report(report)})

    @app.get("/api/runs/{run_id}/download.zip")
    def download(run_id: str) -> FileResponse:
        out_dir = manager.get(run_id).out_dir
        fd, tmp = tempfile.mkstemp(prefix="synthloop-", suffix=".zip")
        os.close(fd)
        try:
            gallery.zip_dataset(out_dir, Path(tmp))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return FileResponse(tmp, media_type="application/zip", filename=f"{run_id}.zip",
                            background=BackgroundTask(Path(tmp).unlink, missing_ok=True))

    app.mount("/static", StaticFiles(directory=_static_dir()), name="static")
    return app


def serve(app: Any, host: str, port: int) -> None:
    """Run the app with uvicorn until Ctrl-C."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
