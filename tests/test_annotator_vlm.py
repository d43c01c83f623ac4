"""VLM steps of the model annotators against the scripted OpenAI-compatible server: candidate captions, and the
yes/no presence check that adds a `vlm` source to the certificates."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer
from PIL import Image
from test_annotator_detector import DETECTIONS, IMAGE, LAYOUT, SPEC, ScriptedDetector

from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.annotate.sam import BoxPromptedAnnotator
from synthloop.tools.annotate.vlm_captions import vlm_captions
from synthloop.tools.annotate.vlm_check import VLMEndpoint
from synthloop.tools.critic.detectors.registry import DETECTORS
from synthloop.tools.llm import LLMClient, LLMError
from synthloop.tools.render.base import RenderResult


def client(server: FakeOpenAIServer) -> LLMClient:
    return LLMClient(server.base_url, model="fake-vlm", max_retries=0, max_reasks=1, retry_wait_s=(0.01, 0.02))


def sent_image(request: dict[str, Any]) -> Image.Image:
    parts = request["body"]["messages"][-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def sent_text(request: dict[str, Any]) -> str:
    return next(p["text"] for p in request["body"]["messages"][-1]["content"] if p["type"] == "text")


def test_vlm_captions_returns_distinct_candidates_and_sends_the_image(server: FakeOpenAIServer) -> None:
    server.queue_json({"captions": ["A red cup  on a wooden table.", "a red cup on a wooden table.",
                                    "Two plates and a cup.", "A kitchen scene."]})
    captions = vlm_captions(client(server), IMAGE, count=3)
    assert captions == ["A red cup on a wooden table.", "Two plates and a cup.", "A kitchen scene."]
    assert "Write 3 different captions" in sent_text(server.requests[0])
    picture = sent_image(server.requests[0])
    assert max(picture.size) >= 256, "small images are enlarged for the VLM like the judge's"
    server.queue_json({"captions": []})  # invalid (at least one caption), re-asked once
    server.queue_json({"captions": ["One cup."]})
    assert vlm_captions(client(server), IMAGE, count=2) == ["One cup."]
    assert "invalid" in server.requests[-1]["body"]["messages"][-1]["content"]
    with pytest.raises(ValueError, match="count"):
        vlm_captions(client(server), IMAGE, count=0)
    server.queue_status(500)
    with pytest.raises(LLMError):
        vlm_captions(client(server), IMAGE)


@pytest.fixture
def scripted() -> Iterator[dict[str, Any]]:
    DETECTORS.register("scripted", ScriptedDetector)
    yield {"backend": "scripted", "detections": DETECTIONS}
    DETECTORS.unregister("scripted")


def test_the_vlm_answer_joins_the_detector_annotators_certificates(server: FakeOpenAIServer,
                                                                   scripted: dict[str, Any]) -> None:
    annotator = ANNOTATORS.build({"backend": "detector", "detector": scripted,
                                  "vlm": {"base_url": server.base_url, "model": "fake-vlm", "max_retries": 0}})
    server.queue_json({"answers": [{"index": 0, "reason": "a mug", "present": "yes"},
                                   {"index": 1, "reason": "a tray, not a plate", "present": False}]})
    first, second, third = annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC).instances
    assert len(server.requests) == 1, "one VLM call per image"
    text = sent_text(server.requests[0])
    assert "0: cup at 12,10,40,38" in text and "1: plate at 50,16,90,64" in text and "2: cup at 5,48,25,76" in text
    assert first.certificate.sources["vlm"] == 1.0
    assert first.certificate.agreement == pytest.approx(
        (first.certificate.sources["layout"] * first.certificate.sources["detector_iou"] * 0.9) ** 0.25, abs=1e-4)
    assert second.certificate.sources["vlm"] == 0.0 and second.certificate.agreement == 0.0
    assert "vlm" not in third.certificate.sources, "an index the VLM did not answer gets no vlm source"


class BoxPredictor:
    """A stand-in segmenter: each box's mask is the box itself (predicted IoU 0.9), except the `empty` ones."""

    id = "box-stub"

    def __init__(self, empty: tuple[int, ...] = ()) -> None:
        self.empty = set(empty)

    def embed(self, image: np.ndarray) -> tuple[int, int]:
        return image.shape[0], image.shape[1]

    def predict(self, embedding: tuple[int, int], boxes: np.ndarray, *, multimask: bool) -> tuple[Any, Any]:
        masks = np.zeros((len(boxes), *embedding), dtype=bool)
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            if k not in self.empty:
                masks[k, round(y0):round(y1), round(x0):round(x1)] = True
        return masks, np.full(len(boxes), 0.9)


def test_sam_asks_the_vlm_only_about_what_it_found(server: FakeOpenAIServer) -> None:
    endpoint = VLMEndpoint(base_url=server.base_url, model="fake-vlm", max_retries=0)
    annotator = BoxPromptedAnnotator(BoxPredictor(empty=(1,)), vlm=endpoint)
    server.queue_json({"answers": [{"index": 0, "present": True}, {"index": 1, "present": True}]})
    first, lost, third = annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC).instances
    text = sent_text(server.requests[0])
    assert "0: cup at 10,8,40,40" in text and "1: cup at 5,48,25,76" in text and "plate" not in text
    assert first.certificate.sources == {"layout": 1.0, "sam_iou": 0.9, "vlm": 1.0}
    assert first.certificate.agreement == pytest.approx(0.9 ** (1 / 3), abs=1e-4)
    assert third.certificate.sources["vlm"] == 1.0, "shown as index 1, mapped back to instance 2"
    assert lost.area == 0 and "vlm" not in lost.certificate.sources and lost.certificate.agreement == 0.0
