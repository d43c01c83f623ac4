"""The user's own data in the web UI: uploaded reference COCO sets and cut-outs (zips extracted without trusting
them), reference images reaching the renderer through a per-run snapshot, and `synthloop ui --reference-*`.

Every upload here goes through the page's own rules (Host, Origin, CSRF token, raw body); a refused upload
answers one line and leaves nothing in the workspace.
"""

from __future__ import annotations

import dataclasses
import io
import json
import stat
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from assetdata import BLUE, RED, make_assets, make_coco
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from scripted_planner import make_planner
from ui_server import free_port, ui_server

from synthloop.agent.config import RunConfig
from synthloop.agent.web.safety import UnsafeRequest
from synthloop.agent.web.server import create_app
from synthloop.agent.web.user_data import UserData
from synthloop.agent.web.zips import ZipLimits, extract_zip
from synthloop.tools.backend import Capabilities
from synthloop.tools.render.base import RenderResult
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.registry import RENDERERS

BASE = "http://127.0.0.1:8765"
ZIP = {"Content-Type": "application/zip"}


def _replan(config: object, planner: Any) -> Any:
    return lambda spec, message: planner(f"{spec.request} {message}")


def _page(workspace: Path, config: RunConfig | None = None, **options: Any) -> TestClient:
    """The UI's own page: right Host, the session's CSRF token on every POST and DELETE."""
    app = create_app(workspace, config=config or RunConfig(batch_size=4),
                     planner_factory=lambda c: make_planner(c, None, None), reviser_factory=_replan, port=8765,
                     **options)
    http = TestClient(app, raise_server_exceptions=False, base_url=BASE)
    http.headers["X-Synthloop-CSRF"] = http.get("/api/session").json()["csrf"]
    return http


def _wait(http: TestClient, run_id: str, status: str, timeout: float = 300) -> dict:
    import time

    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = http.get(f"/api/runs/{run_id}/state").json()
        if state.get("status") == status:
            return state
        assert state.get("status") != "error", state
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {status}: {state}")


def _run(http: TestClient, request: str = "3 cups") -> tuple[str, dict]:
    """Start a run, wait for its approval question; (run id, the waiting state)."""
    response = http.post("/api/runs", json={"request": request})
    assert response.status_code == 200, response.json()
    run_id = response.json()["id"]
    return run_id, _wait(http, run_id, "waiting")


def _finish(http: TestClient, run_id: str) -> list[dict]:
    """Approve, wait for the export, return the kept samples as the gallery lists them."""
    assert http.post(f"/api/runs/{run_id}/reply", json={"action": "approve"}).status_code == 200
    _wait(http, run_id, "done")
    return http.get(f"/api/runs/{run_id}/samples?kind=kept&limit=200").json()["samples"]


def _run_config(workspace: Path, run_id: str) -> dict:
    return json.loads((workspace / run_id / ".work" / "run.json").read_text())["config"]


def _zip(files: dict[str, bytes | Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return buffer.getvalue()


def _coco_zip(tmp_path: Path, prefix: str = "") -> bytes:
    """assetdata's two-image COCO set (cup, plate) as a zip: instances.json beside images/."""
    coco, images = make_coco(tmp_path / f"coco-{prefix.strip('/') or 'top'}")
    return _zip({f"{prefix}instances.json": coco, **{f"{prefix}images/{p.name}": p for p in images.iterdir()}})


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _stored(workspace: Path, kind: str) -> list[Path]:
    """Everything under a stored-set folder (sets and leftovers of failed uploads alike)."""
    folder = workspace / kind
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _one_line(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert "\n" not in error and "Traceback" not in error, error
    for word in words:
        assert word in error, (word, error)


# --- a reference COCO set ---------------------------------------------------------------------------------------


def test_an_uploaded_reference_set_anchors_the_next_runs_until_cleared(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    data = _coco_zip(tmp_path, prefix="my-set/")  # zipped as a folder: file_names resolve beside the JSON
    response = http.post("/api/reference-data?name=kitchen%20set.zip", content=data, headers=ZIP)
    assert response.status_code == 200, response.json()
    stored = response.json()["set"]
    assert (stored["name"], stored["classes"], stored["n_images"], stored["n_objects"]) == (
        "kitchen set.zip", ["cup", "plate"], 2, 2)
    folder = workspace / "reference_data" / stored["id"]
    assert _stored(workspace, "reference_data") == [folder]  # no temporary folder left behind
    assert json.loads((folder / "files" / stored["coco"]).read_text())["categories"][0]["name"] == "cup"
    assert http.get("/api/user-data").json()["reference"]["id"] == stored["id"]

    run_id, state = _run(http)
    config = _run_config(workspace, run_id)
    coco, images = str(folder / "files" / stored["coco"]), str(folder / "files" / stored["images"])
    assert config["layout"] == {"backend": "reference", "coco": coco, "images": images}
    assert config["renderer"] == {"backend": "copy_paste", "reference_coco": coco, "reference_images": images}
    notes = [e["text"] for e in state["events"] if e.get("note")]
    assert notes and notes[0].startswith("Reference set kitchen set.zip (cup, plate): layouts from its statistics")
    # before approval the plan says where the cups come from: the user's COCO data
    assert any(n.startswith("cup: ") and "your COCO data" in n for n in state["pending"]["spec"]["plan_notes"])
    samples = _finish(http, run_id)
    cups = [o for s in samples for o in s["origins"]["objects"] if o["category"] == "cup"]
    assert cups and all(o["source"] == "coco" and o["asset"].startswith("coco:") and o["licence"] for o in cups)

    # COCO's own layout (annotations/ beside train2017/) is found too
    coco_file, images_dir = make_coco(tmp_path / "coco-layout")
    layout = _zip({"annotations/instances_train.json": coco_file,
                   **{f"train2017/{p.name}": p for p in images_dir.iterdir()}})
    other = http.post("/api/reference-data?name=coco.zip", content=layout, headers=ZIP).json()["set"]
    assert (other["coco"], other["images"]) == ("annotations/instances_train.json", "train2017")
    assert http.post("/api/reference-data", content=data, headers=ZIP).json()["reference"]["id"] == stored["id"]

    cleared = http.delete("/api/reference-data")
    assert cleared.status_code == 200 and cleared.json()["reference"] is None
    assert folder.is_dir()  # clearing deactivates; a stopped run naming the set can still resume
    later, _ = _run(http)
    config = _run_config(workspace, later)
    assert config["layout"] == "procedural" and "reference_coco" not in json.dumps(config["renderer"])


def _symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("images/a.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("instances.json", "{}")
    return buffer.getvalue()


def _bad_reference_zips(tmp_path: Path) -> dict[str, tuple[bytes, int, tuple[str, ...]]]:
    coco, images = make_coco(tmp_path / "bad")
    good_images = {f"images/{p.name}": p for p in images.iterdir()}
    png = (images / "a.png").read_bytes()
    return {
        "zip slip": (_zip({"instances.json": coco, "../escaped.png": png}), 415, ("'..'",)),
        "absolute path": (_zip({"instances.json": coco, "/tmp/escaped.png": png}), 415, ("absolute",)),
        "symlink member": (_symlink_zip(), 415, ("symbolic link",)),
        "not a zip": (b"PK\x03\x04 but not really a zip", 415, ("not a readable zip",)),
        "not COCO": (_zip({"data.json": b'{"hello": "world"}', **good_images}), 422,
                     ("data.json is not a COCO instances file",)),
        "missing images": (_zip({"instances.json": coco, "images/a.png": png}), 422,
                           ("instances.json: image file 'b.png' is not in images",)),
        "two JSON files": (_zip({"a.json": coco, "b.json": coco, **good_images}), 422, ("exactly one",)),
        "other file type": (_zip({"instances.json": coco, "notes.sh": b"rm -rf /", **good_images}), 415,
                            ("unexpected file type",)),
        "image by name only": (_zip({"instances.json": coco, "images/a.png": b"#!/bin/sh\n",
                                     "images/b.png": png}), 415, ("not a PNG or JPEG",)),
        "nested JSON": (_zip({"instances.json": b"[" * 100_000 + b"]" * 100_000, **good_images}), 422, ()),
    }


def test_bad_reference_zips_get_one_line_errors_and_store_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    for case, (data, status, words) in _bad_reference_zips(tmp_path).items():
        response = http.post("/api/reference-data?name=bad.zip", content=data, headers=ZIP)
        _one_line(response, status, *words)
        assert _stored(workspace, "reference_data") == [], case
        assert http.get("/api/user-data").json()["reference"] is None, case
    assert not (tmp_path / "escaped.png").exists() and not (workspace / "escaped.png").exists()
    assert not (workspace / "reference_data" / "escaped.png").exists()


def test_zip_bombs_are_refused_by_declared_and_by_actual_size(tmp_path: Path) -> None:
    limits = ZipLimits(max_bytes=1024 * 1024, max_members=20, max_uncompressed_bytes=4 * 1024 * 1024)
    workspace = tmp_path / "ws"
    http = _page(workspace, zip_limits=limits)
    bomb = _zip({"instances.json": b"{" + b" " * (16 * 1024 * 1024) + b"}"})  # 16 MiB of JSON in ~16 KiB
    assert len(bomb) < limits.max_bytes
    _one_line(http.post("/api/reference-data", content=bomb, headers=ZIP), 413, "zip bomb")
    many = _zip({f"images/{i}.png": b"\x89PNG\r\n\x1a\n" for i in range(21)})
    _one_line(http.post("/api/reference-data", content=many, headers=ZIP), 413, "21 members", "limit is 20")
    too_big = b"PK" + b"\x00" * limits.max_bytes
    _one_line(http.post("/api/assets", content=too_big, headers=ZIP), 413, "too large")
    assert _stored(workspace, "reference_data") == [] and _stored(workspace, "assets") == []

    # a member whose header under-declares its size: extraction counts what it decompresses
    honest = _zip({"big.json": b" " * 100_000})
    declared = honest.rindex(b"PK\x01\x02") + 24  # uncompressed size in the central directory entry
    lying = honest[:declared] + (10).to_bytes(4, "little") + honest[declared + 4:]
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeRequest) as refused:
        extract_zip(lying, tmp_path / "out", frozenset({".json"}), limits)
    assert refused.value.status in (413, 415)
    assert all(p.stat().st_size <= 10 for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_zip_member_names_are_confined(tmp_path: Path) -> None:
    names = ["../x.json", "a/../../x.json", "/abs.json", "C:/x.json", "a\\..\\x.json", "./x.json", "a//x.json",
             "a/b/c/d/e/f/g/h/i/j/x.json"]
    for name in names:
        dest = tmp_path / f"out-{names.index(name)}"
        dest.mkdir()
        with pytest.raises(UnsafeRequest):
            extract_zip(_zip({name: b"{}"}), dest, frozenset({".json"}))
        assert not any(dest.rglob("*")), name
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "abs.json").exists()


# --- cut-outs -----------------------------------------------------------------------------------------------------


def test_uploaded_cutouts_are_pasted_in_the_next_runs(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    root = make_assets(tmp_path / "cutouts", {"cup": [("ellipse", RED), ("square", BLUE)]})
    data = _zip({f"cutouts/{p.relative_to(root).as_posix()}": p for p in sorted(root.rglob("*.png"))})
    response = http.post("/api/assets?name=cups.zip", content=data, headers=ZIP)
    assert response.status_code == 200, response.json()
    stored = response.json()["set"]
    assert (stored["classes"], stored["root"]) == ({"cup": 2}, "cutouts")
    run_id, state = _run(http)
    expected = str(workspace / "assets" / stored["id"] / "files" / "cutouts")
    assert _run_config(workspace, run_id)["renderer"] == {"backend": "copy_paste", "assets_dir": expected}
    assert any(e["text"].startswith("Cut-outs cups.zip (cup 2)") for e in state["events"])
    cups = [o for s in _finish(http, run_id) for o in s["origins"]["objects"]]
    assert cups and all(o["source"] == "user" and o["asset"].startswith("user:cup/") for o in cups)


def test_bad_cutout_zips_get_one_line_errors_and_store_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    opaque = io.BytesIO()
    Image.new("RGB", (60, 40), RED).save(opaque, format="PNG")
    jpeg = io.BytesIO()
    Image.new("RGB", (60, 40), RED).save(jpeg, format="JPEG")
    good = make_assets(tmp_path / "good", {"cup": [("ellipse", RED)]}) / "cup" / "0.png"
    cases = {
        "no transparency": (_zip({"cup/0.png": opaque.getvalue()}), 422, ("cup/0.png",)),
        "a JPEG": (_zip({"cup/0.jpg": jpeg.getvalue()}), 415, ("unexpected file type",)),
        "stray file": (_zip({"cup/0.png": good, "loose.png": good}), 422, ("loose.png", "stray file")),
        "zip slip": (_zip({"cup/0.png": good, "cup/../../x.png": good}), 415, ("'..'",)),
    }
    for case, (data, status, words) in cases.items():
        _one_line(http.post("/api/assets", content=data, headers=ZIP), status, *words)
        assert _stored(workspace, "assets") == [], case
    assert http.get("/api/user-data").json()["assets"] is None


# --- reference images reach the renderer ----------------------------------------------------------------------


class ProbeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    references: str | None = Field(default=None, description="Folder of reference / style images.")


class ReferenceProbe(CompositorRenderer):
    """The compositor, declaring `uses_references`; records the reference files it was given in its info."""

    id = "reference_probe"
    Options = ProbeOptions
    capabilities = Capabilities(exact_labels=True, provides_masks=True, uses_references=True)

    def __init__(self, references: str | None = None) -> None:
        super().__init__()
        self.references = references

    def render(self, layout: Any, spec: Any, seed: int, *, prompt: str = "") -> RenderResult:
        result = super().render(layout, spec, seed, prompt=prompt)
        seen = sorted(p.name for p in Path(self.references).iterdir()) if self.references else None
        return dataclasses.replace(result, info={**result.info, "references": seen})


def test_reference_images_reach_a_renderer_that_uses_references(tmp_path: Path, register_backend: Any) -> None:
    register_backend(RENDERERS, "reference_probe", ReferenceProbe)
    workspace = tmp_path / "ws"
    http = _page(workspace, RunConfig(batch_size=4, renderer="reference_probe"))
    names = [http.post("/api/references", content=_png(colour, seed=i), headers=ZIP).json()["name"]
             for i, colour in enumerate([RED, BLUE])]
    status = http.get("/api/user-data").json()["references"]
    assert status["count"] == 2 and "reference / style images" in status["use"] and not status["warning"]

    run_id, state = _run(http)
    snapshot = Path(_run_config(workspace, run_id)["renderer"]["references"])
    assert snapshot.parent == workspace / "reference_snapshots" and sorted(p.name for p in snapshot.iterdir()) == \
        sorted(names)
    assert any("serve as reference / style images" in e["text"] for e in state["events"] if e.get("note"))
    samples = _finish(http, run_id)
    assert samples and all(s["origins"]["references"] == sorted(names) for s in samples)

    # a later upload or a clear never changes the snapshot a resuming run reads; a new run gets a new one
    third = http.post("/api/references", content=_png((20, 200, 20), seed=3), headers=ZIP).json()["name"]
    later, _ = _run(http)
    newer = Path(_run_config(workspace, later)["renderer"]["references"])
    assert newer != snapshot and sorted(p.name for p in newer.iterdir()) == sorted([*names, third])
    assert http.delete("/api/references").json()["deleted"] == 3
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(names)
    assert http.get("/api/user-data").json()["references"]["count"] == 0


def test_copy_paste_uses_reference_images_as_backgrounds(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    name = http.post("/api/references", content=_png((120, 90, 60), (160, 120)), headers=ZIP).json()["name"]
    run_id, _ = _run(http)
    renderer = _run_config(workspace, run_id)["renderer"]
    assert renderer["backend"] == "copy_paste"
    assert sorted(p.name for p in Path(renderer["backgrounds_dir"]).iterdir()) == [name]
    samples = _finish(http, run_id)
    assert samples and all(s["origins"]["background"] == "user" and s["origins"]["background_file"] == name
                           for s in samples)


def test_uploaded_reference_images_replace_the_configs_folder(tmp_path: Path) -> None:
    configured = tmp_path / "backgrounds"
    configured.mkdir()
    (configured / "street.png").write_bytes(_png((90, 90, 90)))
    workspace = tmp_path / "ws"
    http = _page(workspace, RunConfig(batch_size=4, renderer={"backend": "copy_paste",
                                                              "backgrounds_dir": str(configured)}))
    assert http.get("/api/user-data").json()["configured"] == {"backgrounds_dir": str(configured)}
    first, _ = _run(http)
    assert _run_config(workspace, first)["renderer"]["backgrounds_dir"] == str(configured)  # nothing uploaded
    http.post("/api/references", content=_png(RED), headers=ZIP)
    second, state = _run(http)
    snapshot = Path(_run_config(workspace, second)["renderer"]["backgrounds_dir"])
    assert snapshot.parent == workspace / "reference_snapshots"
    notes = [e["text"] for e in state["events"] if e.get("note")]
    assert len(notes) == 1 and notes[0].startswith("the 1 uploaded reference image serves as background photographs")
    assert notes[0].endswith(f"instead of the config's {configured})")


def test_the_diffusion_renderer_takes_them_through_its_ip_adapter(tmp_path: Path) -> None:
    """The real diffusion options (nothing is loaded): `references` needs `ip_adapter`, and the note says so."""
    workspace = tmp_path / "ws"
    (workspace / "references").mkdir(parents=True)
    (workspace / "references" / "style.png").write_bytes(_png(BLUE))
    plain = RunConfig(renderer={"backend": "diffusion", "model": "org/some-model"})
    config, notes = UserData(workspace, plain).run_config()
    assert config.renderer == plain.renderer and len(notes) == 1 and notes[0].warning
    assert "needs `ip_adapter`" in notes[0].text

    configured = tmp_path / "styles"
    configured.mkdir()
    adapter = RunConfig(renderer={"backend": "diffusion", "model": "org/some-model", "ip_adapter": "h94/IP-Adapter",
                                  "references": str(configured)})
    config, notes = UserData(workspace, adapter).run_config()
    snapshot = Path(config.renderer.options["references"])
    assert [p.name for p in snapshot.iterdir()] == ["style.png"] and config.renderer.options["ip_adapter"]
    assert not notes[0].warning and "reference / style images" in notes[0].text


def test_a_renderer_without_references_says_so(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace, RunConfig(batch_size=4, renderer="compositor"))
    http.post("/api/references", content=_png(RED), headers=ZIP)
    run_id, state = _run(http)
    warnings = [e["text"] for e in state["events"] if e.get("warning")]
    assert warnings == ["renderer 'compositor' does not use reference images: the 1 uploaded reference image is "
                        "not used in this run"]
    assert _run_config(workspace, run_id)["renderer"] == "compositor"


# --- the page's rules hold for the new requests ---------------------------------------------------------------


def test_uploads_and_clears_need_the_csrf_token_and_this_origin(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    http = _page(workspace)
    data = _coco_zip(tmp_path)
    assert http.post("/api/reference-data", content=data, headers=ZIP).status_code == 200
    requests = [("post", "/api/reference-data", data), ("post", "/api/assets", data),
                ("delete", "/api/reference-data", None), ("delete", "/api/assets", None),
                ("delete", "/api/references", None)]
    bare = TestClient(http.app, raise_server_exceptions=False, base_url=BASE, cookies=http.cookies)
    for method, path, body in requests:
        kwargs = {"content": body, "headers": ZIP} if body else {}
        response = getattr(bare, method)(path, **kwargs)
        assert response.status_code == 403 and "CSRF" in response.json()["error"], (method, path)
        evil = getattr(http, method)(path, **{**kwargs, "headers": {**kwargs.get("headers", {}),
                                                                    "Origin": "http://evil.example"}})
        assert evil.status_code == 403 and "cross-origin" in evil.json()["error"], (method, path)
        foreign = TestClient(http.app, raise_server_exceptions=False, base_url="http://evil.example")
        assert getattr(foreign, method)(path, **kwargs).status_code == 403
    form = http.post("/api/assets", content=data, headers={"Content-Type": "multipart/form-data"})
    assert form.status_code == 415
    assert http.get("/api/user-data").json()["reference"] is not None  # nothing was cleared
    assert _stored(workspace, "assets") == []


# --- synthloop ui --assets / --reference-* ---------------------------------------------------------------------


def test_the_ui_command_passes_the_users_data_to_every_run(tmp_path: Path) -> None:
    coco, images = make_coco(tmp_path / "ref")
    workspace = tmp_path / "ws"
    # the user data reached the app: the status the page shows names the command line's reference
    with ui_server(workspace, "--reference-coco", str(coco), "--reference-images", str(images)) as base, \
            urllib.request.urlopen(base + "/api/user-data", timeout=30) as response:
        status = json.loads(response.read())
    assert status["layout"] == "reference"
    assert status["configured"] == {"reference_coco": str(coco), "reference_images": str(images)}
    missing = subprocess.run([sys.executable, "-m", "synthloop.agent.cli", "ui", "--workspace", str(workspace),
                              "--port", str(free_port()),
                              "--reference-coco", str(coco), "--reference-images", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"error: reference images folder not found: {tmp_path}/nowhere"]
