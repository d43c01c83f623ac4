"""Plans and runs through a faulty LLM endpoint: the fault proxy (tests/fault_proxy.py) in front of the scripted
fake server injects timeouts, 429 with Retry-After, 500s, malformed and truncated bodies in 25–30% of the calls.

- planning through the proxy gives exactly the specs planning without it gives;
- a run whose planner and VLM judge both go through the proxy keeps exactly its images, and the dataset is the
  one a fault-free run makes;
- a dead endpoint is one `error:` line and exit 2 on every command (plan, generate, chat, resume, the web UI),
  and `resume DIR --config FILE` finishes the run on a working endpoint; other config changes are refused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer
from fault_proxy import summary

from synthloop.agent.planner import plan_request
from synthloop.tools.llm import LLMClient

PLAN = {"classes": ["kayak", "lantern"]}
VERDICT = {"reasons": ["the boxes sit on their objects"], "realism": 4, "label_correctness": 5, "decision": "accept",
           "edit_instruction": ""}
REQUEST = "12 images, 96x96: kayak lantern"  # no class the rules know: the planner asks the LLM
FAST_RETRIES = {"max_retries": 10, "timeout_s": 2.0, "max_retry_after_s": 0.05}


def answer(request: dict[str, Any]) -> str:
    """The fake model: a VLM verdict for a message with an image, else the planner's proposal."""
    messages = request.get("messages", [])
    with_image = any(isinstance(m.get("content"), list) for m in messages)
    return json.dumps(VERDICT if with_image else PLAN)


@pytest.fixture
def model() -> Any:
    with FakeOpenAIServer(responder=answer) as fake:
        yield fake


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def synthloop(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHLOOP_")}
    return subprocess.run([sys.executable, "-m", "synthloop.agent.cli", *args], capture_output=True, text=True,
                          timeout=600, input=stdin, env={**environment, **(env or {})}, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_config(path: Path, llm_url: str, vlm_url: str | None = None, *, retries: dict | None = None,
                 **extra: Any) -> Path:
    """A run config reaching the LLM (and the VLM judge) at these URLs; `retries` {} keeps the default retries."""
    retries = FAST_RETRIES if retries is None else retries
    config: dict[str, Any] = {"llm": {"base_url": llm_url, "model": "fake-model", **retries}, "batch_size": 3,
                              **extra}
    if vlm_url is not None:
        config["vlm"] = {"base_url": vlm_url, "model": "fake-vlm", "structured_output": "json_object", **retries}
    path.write_text(yaml.safe_dump(config))
    return path


def test_plans_through_faults_equal_plans_without(model: FakeOpenAIServer, fault_proxy) -> None:
    requests = [f"{n} images, {size}x{size}: kayak lantern" for n in (4, 12, 30, 200) for size in (64, 128, 256)]
    requests += ["kayak and lantern pictures, COCO and YOLO", "lanterns, 300 of them, with masks"]
    direct = LLMClient(model.base_url, model="fake-model", retry_wait_s=(0.01, 0.05))
    expected = [plan_request(r, direct, llm="always") for r in requests]
    proxy = fault_proxy(model.base_url, rate=0.25, seed=12, hang_s=3.0)
    client = LLMClient(proxy.base_url, model="fake-model", retry_wait_s=(0.01, 0.05), **FAST_RETRIES)
    client.timeout_s = 0.5  # a timeout fault costs half a second
    for _ in range(3):
        got = [plan_request(r, client, llm="always") for r in requests]
        assert got == expected, summary(proxy)
    assert sum(proxy.injected.values()) >= 10 and len(proxy.injected) >= 5, summary(proxy)


def _dataset(out: Path) -> dict[str, bytes]:
    files = [*out.glob("images/**/*.png"), *out.glob("annotations/*.json"), out / "manifest.jsonl"]
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def test_a_run_through_faults_keeps_exactly_its_images(model: FakeOpenAIServer, fault_proxy, tmp_path: Path) -> None:
    clean_config = write_config(tmp_path / "clean.yaml", model.base_url, model.base_url)
    clean = synthloop("generate", REQUEST, "--out", str(tmp_path / "clean"), "--yes", "--config", str(clean_config))
    assert clean.returncode == 0, clean.stderr
    proxy = fault_proxy(model.base_url, rate=0.3, seed=5, hang_s=4.0)
    faulty_config = write_config(tmp_path / "faulty.yaml", proxy.base_url, proxy.base_url)
    faulty = synthloop("generate", REQUEST, "--out", str(tmp_path / "faulty"), "--yes", "--config", str(faulty_config))
    assert faulty.returncode == 0, (faulty.stderr, summary(proxy))
    assert "kept 12/12 images" in faulty.stdout
    assert sum(proxy.injected.values()) >= 3 and len(proxy.injected) >= 2, summary(proxy)
    manifest = (tmp_path / "faulty" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 12 and all(json.loads(line)["verdicts"] for line in manifest)
    assert _dataset(tmp_path / "faulty") == _dataset(tmp_path / "clean")


def test_a_dead_endpoint_is_one_line_on_every_command_and_the_run_resumes(model: FakeOpenAIServer,
                                                                          tmp_path: Path) -> None:
    dead = write_config(tmp_path / "dead.yaml", f"http://127.0.0.1:{free_port()}/v1", retries={})
    planned = synthloop("plan", REQUEST, "--config", str(dead))
    one_error_line(planned, "cannot reach LLM endpoint")
    assert len(planned.stderr.strip().splitlines()) == 1, planned.stderr  # the retries are not printed
    one_error_line(synthloop("chat", "--config", str(dead), "--out", str(tmp_path / "chat"), stdin=REQUEST + "\n"),
                   "cannot reach LLM endpoint")
    out = tmp_path / "run"
    line = one_error_line(synthloop("generate", REQUEST, "--out", str(out), "--yes", "--config", str(dead)),
                          "cannot reach LLM endpoint", f"synthloop resume {out}")
    assert "after 4 attempts" in line  # the default retries, then one line: not 87 lines of traceback
    one_error_line(synthloop("resume", str(out)), "cannot reach LLM endpoint")  # run.json still names the dead one

    changed = write_config(tmp_path / "changed.yaml", model.base_url, batch_size=5, min_box_side_px=2.0)
    one_error_line(synthloop("resume", str(out), "--config", str(changed)), "batch_size, min_box_side_px")
    good = write_config(tmp_path / "good.yaml", model.base_url)
    resumed = synthloop("resume", str(out), "--config", str(good))
    assert resumed.returncode == 0, resumed.stderr
    assert "kept 12/12 images" in resumed.stdout
    assert json.loads((out / ".work" / "run.json").read_text())["config"]["llm"]["base_url"] == model.base_url
    assert synthloop("validate", str(out)).returncode == 0


def test_a_dead_endpoint_is_one_line_in_the_web_ui(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from synthloop.agent.config import load_config
    from synthloop.agent.planner.factories import make_planner, make_reviser
    from synthloop.agent.web.server import create_app

    config = load_config(write_config(tmp_path / "dead.yaml", f"http://127.0.0.1:{free_port()}/v1", retries={}))
    app = create_app(tmp_path / "ws", config=config, planner_factory=lambda c: make_planner(c, None, None),
                     reviser_factory=make_reviser)
    http = TestClient(app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False)
    http.headers["X-Synthloop-CSRF"] = http.get("/api/session").json()["csrf"]
    run_id = http.post("/api/runs", json={"request": REQUEST}).json()["id"]
    deadline = time.monotonic() + 300
    while (state := http.get(f"/api/runs/{run_id}/state").json())["status"] != "error":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["error"].startswith("cannot reach LLM endpoint") and "\n" not in state["error"]
    assert state["events"][-1]["text"] == f"error: {state['error']}"
