"""End to end in real headless Chromium: request → question → answer → edits → approve → gallery → votes; a
reference COCO set uploaded in the page anchors a run (plan notes before approval, provenance in the gallery).

Debian's `chromium` driven by Playwright's Python package (no `playwright install`: the browser is the system
one). Under CI (CI=true) a missing browser or Playwright fails the test; elsewhere it is skipped with the reason.
Set SYNTHLOOP_UI_SCREENSHOTS=DIR to save the README's screenshots there while it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assetdata import make_coco
from ui_server import ui_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required in CI: .ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _shoot(page: Any, name: str, selector: str | None = None) -> None:
    folder = os.environ.get("SYNTHLOOP_UI_SCREENSHOTS")
    if folder:
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        Path(folder).mkdir(parents=True, exist_ok=True)
        target = page.locator(selector) if selector else page
        target.screenshot(path=str(Path(folder) / name))


def _send(page: Any, text: str) -> None:
    page.fill("#chat-input", text)
    page.click("#send")


def test_request_question_edit_approve_gallery_and_votes(browser: Any, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    config = tmp_path / "config.yaml"
    config.write_text("min_visible_fraction: 0.95\n")  # a strict occlusion rule, so the critic rejects some
    with ui_server(workspace, "--config", str(config)) as base:
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(300_000)  # generous: a busy machine is slow, not broken
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/")

        # 1. a request without objects: the planner asks; the answer plans again
        _send(page, "some kitchen table images")
        page.wait_for_selector(".msg.question:has-text('Which objects should the images contain?')")
        assert page.is_disabled("#approve") is False
        page.click("#approve")  # approving with an open question is refused with a clear error
        page.wait_for_selector("#error:has-text('answer the question first')")
        _send(page, "cups, plates and forks")
        page.wait_for_selector(".msg.assistant:has-text('objects +cup +fork +plate')")
        names = page.eval_on_selector_all("#objects-table .obj-name", "els => els.map(e => e.value)")
        assert names == ["cup", "plate", "fork"]

        # 2. a conversational edit ("message"), then an edit in the spec table ("edit")
        _send(page, "make it 10")
        page.wait_for_selector(".msg.assistant:has-text('n_images 6 → 10')")
        page.fill("#spec-table [data-field='seed']", "21")
        page.fill("#spec-table [data-field='width']", "192")
        page.fill("#spec-table [data-field='height']", "192")
        page.click("#apply-edit")
        page.wait_for_selector(".msg.assistant:has-text('height 96 → 192; seed 5 → 21; width 96 → 192')")
        assert page.input_value("#spec-table [data-field='n_images']") == "10"
        _shoot(page, "ui-chat-spec.png")

        # 3. approve; progress streams; the gallery fills with drawn samples and the critic's reasons
        page.click("#approve")
        page.wait_for_selector("#status:text-is('done')")
        page.wait_for_function("document.querySelectorAll('#gallery figure.card').length === 10")
        page.wait_for_function("[...document.querySelectorAll('#gallery img')].every(i => i.complete && "
                               "i.naturalWidth === 320)")
        assert "kept 10/10" in page.text_content("#progress-text")
        assert page.locator("#gallery figure.card .reasons li").first.text_content().startswith("accepted by rules")
        assert page.get_attribute("#download", "href").endswith("/download.zip")
        page.locator("#gallery figure.card").first.locator("button:has-text('accept')").click()
        page.wait_for_selector("#gallery figure.card .voted:has-text('saved: accept')")
        page.locator("#gallery figure.card").nth(1).locator("button:has-text('reject')").click()
        page.wait_for_selector("#gallery figure.card .voted:has-text('saved: reject')")
        _shoot(page, "ui-gallery.png", "#results")
        rejected = int(page.text_content("#progress-text").split("rejected ")[1].split()[0])
        page.click(".tabs button[data-tab='rejected']")
        if rejected:
            page.wait_for_function(f"document.querySelectorAll('#gallery figure.rejected').length === {rejected}")
            page.wait_for_function("[...document.querySelectorAll('#gallery img')].every(i => i.complete && "
                                   "i.naturalWidth === 320)")
            reasons = page.locator("#gallery figure.rejected .reasons li").all_text_contents()
            assert reasons and all(r.startswith("rules.") for r in reasons)
            _shoot(page, "ui-rejected.png", "#results")
        else:
            page.wait_for_selector("#gallery:has-text('no rejected samples yet')")

        # 4. A/B mode: three votes
        page.click(".tabs button[data-tab='ab']")
        winners = {"#vote-a": "a", "#vote-tie": "tie", "#vote-b": "b"}
        shown: list[tuple[str, str]] = []
        for i, button in enumerate(winners):
            page.wait_for_selector(f"#ab[data-pair='{i + 1}']", state="attached")
            shown.append((page.get_attribute("#ab-a img", "alt"), page.get_attribute("#ab-b img", "alt")))
            if i == 0:
                _shoot(page, "ui-ab.png", "#results")
            page.click(button)
            page.wait_for_selector(f"#label-count:has-text('{3 + i} human label')")
        page.close()
        assert errors == []

    # 5. the votes are in the run's labels file, in the format `synthloop eval critic` reads
    (run_dir,) = [p for p in workspace.iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (run_dir / "human_labels.jsonl").read_text().splitlines()]
    assert [r.get("label") for r in rows[:2]] == ["accept", "reject"]
    assert [r.get("winner") for r in rows[2:]] == ["a", "tie", "b"]
    coco = {}
    for path in (run_dir / "annotations").glob("instances_*.json"):
        split = path.stem.removeprefix("instances_")
        coco.update({(split, im["id"]): im["sample_id"] for im in json.loads(path.read_text())["images"]})
    for row in rows[:2]:
        assert isinstance(row["image_id"], int) and coco[(row["split"], row["image_id"])] == row["sample_id"]
    for row, (alt_a, alt_b) in zip(rows[2:], shown, strict=True):
        assert coco[(row["split"], row["a"])] == row["a_sample_id"] == alt_a.split(": ")[1]
        assert coco[(row["split"], row["b"])] == row["b_sample_id"] == alt_b.split(": ")[1]
    spec = json.loads((run_dir / "spec.json").read_text())
    assert (spec["seed"], spec["width"], spec["height"], spec["n_images"]) == (21, 192, 192, 10)


def test_runs_survive_a_server_restart_and_resume(browser: Any, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with ui_server(workspace) as base:
        page = browser.new_page()
        page.goto(base + "/")
        _send(page, "4 cups")
        page.wait_for_selector("#status:text-is('waiting')")
        page.close()
    with ui_server(workspace) as base:  # a new server process over the same workspace
        page = browser.new_page()
        page.set_default_timeout(300_000)  # generous: a busy machine is slow, not broken
        page.goto(base + "/")
        page.click("#runs li")
        page.wait_for_selector(".msg.user:has-text('4 cups')")  # the conversation came back from disk
        page.wait_for_selector("#status:text-is('stopped')")
        page.click("#resume")
        page.wait_for_selector("#status:text-is('waiting')")
        page.click("#approve")
        page.wait_for_selector("#status:text-is('done')")
        page.wait_for_function("document.querySelectorAll('#gallery figure.card').length === 4")
        page.close()


def test_a_reference_set_uploaded_in_the_page_anchors_the_next_run(browser: Any, tmp_path: Path) -> None:
    coco, images = make_coco(tmp_path / "ref")
    archive, bad = tmp_path / "kitchen-ref.zip", tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(coco, "instances.json")
        for image in sorted(images.iterdir()):
            zipped.write(image, f"images/{image.name}")
    with zipfile.ZipFile(bad, "w") as zipped:
        zipped.write(coco, "instances.json")
        zipped.writestr("../outside.png", (images / "a.png").read_bytes())
    workspace = tmp_path / "ws"
    with ui_server(workspace) as base:
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(300_000)  # generous: a busy machine is slow, not broken
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/")
        page.wait_for_selector("#data-reference:has-text('none')")

        # 1. a zip that escapes its folder: one line in the error box, nothing stored or active
        page.set_input_files("#refset-file", str(bad))
        page.wait_for_selector("#error:has-text('refused')")
        assert "\n" not in page.text_content("#error")
        assert page.text_content("#data-reference") == "reference setnone"
        assert page.text_content("#data-assets") == "cut-outsnone"

        # 2. the good set: the sidebar shows it active, the next run names it and its plan says where cups come from
        page.set_input_files("#refset-file", str(archive))
        page.wait_for_selector("#data-reference:has-text('kitchen-ref.zip')")
        assert "cup, plate · 2 image(s), 2 object(s)" in page.text_content("#data-reference")
        _send(page, "4 cups")
        page.wait_for_selector(".msg.note-msg:has-text('Reference set kitchen-ref.zip (cup, plate)')")
        notes = page.locator("#spec-table tr:has(th:text-is('objects from')) li")
        notes.first.wait_for()
        assert any(n.startswith("cup: ") and "your COCO data" in n for n in notes.all_text_contents())
        _shoot(page, "ui-reference-plan.png")

        # 3. the gallery says per sample where its objects came from (hover title and details)
        page.click("#approve")
        page.wait_for_selector("#status:text-is('done')")
        page.wait_for_function("document.querySelectorAll('#gallery figure.card').length === 4")
        first = page.locator("#gallery figure.card").first
        first.locator("details.origins summary").click()
        origins = first.locator("details.origins li").all_text_contents()
        assert origins and all(o.startswith("cup: coco:instances.json#") for o in origins if o.startswith("cup"))
        assert "(coco, user-provided" in origins[0]
        assert "cup: coco:" in first.locator("img").get_attribute("title")
        _shoot(page, "ui-origins.png", "#results")

        # 4. clearing it: the next run is not anchored any more; what the renderer cannot draw is named before
        #    approval next to where the objects come from
        page.click("#data-reference button:has-text('clear')")
        page.wait_for_selector("#data-reference:has-text('none')")
        spec_file = tmp_path / "watercolour.yaml"
        spec_file.write_text("objects: [{name: cup}]\nn_images: 2\nwidth: 96\nheight: 96\n"
                             "style: watercolour painting\n")
        page.set_input_files("#spec-file", str(spec_file))
        page.wait_for_selector("#spec-table tr:has(th:text-is('cannot deliver')) .notice:has-text('watercolour')")
        later = page.locator("#spec-table tr:has(th:text-is('objects from')) li").all_text_contents()
        assert any(n.startswith("cup: ") and "your COCO data" not in n for n in later)
        assert page.is_enabled("#approve")
        page.click("#cancel")
        page.wait_for_selector("#status:text-is('cancelled')")
        page.close()
        assert errors == []
    assert not (workspace / "outside.png").exists() and not (tmp_path / "outside.png").exists()
    runs = sorted(p for p in workspace.iterdir() if (p / ".work" / "run.json").is_file())
    layouts = [json.loads((run / ".work" / "run.json").read_text())["config"]["layout"] for run in runs]
    assert len(layouts) == 2 and layouts[0]["backend"] == "reference"  # names sort by start time
    assert layouts[0]["coco"].endswith("/files/instances.json") and layouts[1] == "procedural"
    assert json.loads((workspace / "user_data.json").read_text())["reference"] is None
