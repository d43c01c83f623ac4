"""Requests in other languages: detected by script and stop words; the embedded model says plainly that it
reads English; a configured endpoint translates, and the translation is grounded in the original."""

from __future__ import annotations

import pytest
from fake_openai_server import FakeOpenAIServer

from synthloop.agent.config import LLMConfig, RunConfig
from synthloop.agent.planner import make_planner, plan_request
from synthloop.agent.planner.language import detect_language
from synthloop.agent.planner.multilingual import LANGUAGE_QUESTION, UNTRANSLATED_QUESTION
from synthloop.tools.llm import LLMClient
from synthloop.tools.types import ExportFormat, Task

GERMAN = "Erstelle 200 Bilder von Katzen und Mülltonnen im Regen mit Begrenzungsrahmen, Tiefenkarten, bunt, COCO-Format"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (GERMAN, "German"),
        ("500 images de chats et chiens avec des boîtes englobantes, format COCO", "French"),
        ("200 imágenes de gatos y perros con cajas delimitadoras en formato COCO", "Spanish"),
        ("300 immagini di gatti e cani, formato YOLO", "Italian"),
        ("Ik wil 200 afbeeldingen van katten en honden", "Dutch"),
        ("生成200张猫和狗的图片，COCO格式", "Chinese"),
        ("猫と犬の画像を100枚生成してください", "Japanese"),
        ("200 изображений кошек и собак", "Russian"),
        ("Katzen und Hunde", "German"),
    ],
)
def test_non_english_requests_are_detected(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text",
    ["300 kitchen scenes with cups, plates and forks, masks and captions, COCO", "La Rambla street scenes",
     "pictures of pan de muerte and tacos", "café scenes with cups and croissants", "images of the Eiffel Tower",
     "500 images of cats, bitte im COCO format", "", "123 456", "🤗 cats"],
)
def test_english_and_mixed_requests_are_not_flagged(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize("text", [GERMAN, "生成200张猫和狗的图片，COCO格式"])
def test_without_a_multilingual_endpoint_the_plan_says_why(text: str) -> None:
    spec = plan_request(text, None)
    assert [(q.source, q.text) for q in spec.questions] == [("language", LANGUAGE_QUESTION)]
    assert spec.class_names == ["object"] and spec.request == text
    (notice,) = spec.notices
    assert notice.kind == "not_understood" and notice.text == text[:200] and "English" in notice.reason


def test_the_embedded_model_is_not_asked_to_read_other_languages(server: FakeOpenAIServer) -> None:
    spec = plan_request(GERMAN, _client(server), llm="always")
    assert server.requests == [] and spec.questions[0].source == "language"


def _client(server: FakeOpenAIServer) -> LLMClient:
    return LLMClient(server.base_url, model="fake", max_retries=1, max_reasks=1, retry_wait_s=(0.01, 0.02))


def test_a_configured_endpoint_translates_and_the_original_backs_the_plan(server: FakeOpenAIServer) -> None:
    server.queue_json({
        "english": "Create 200 images of cats, trash bins and dragons in the rain with bounding boxes, "
                   "depth maps, COCO format, 640x480",
        "glossary": [{"source": "Bilder", "english": "images"}, {"source": "Katzen", "english": "cats"},
                     {"source": "Mülltonnen", "english": "trash bins"}, {"source": "Regen", "english": "rain"},
                     {"source": "Begrenzungsrahmen", "english": "bounding boxes"},
                     {"source": "Tiefenkarten", "english": "depth maps"},
                     {"source": "Drachen", "english": "dragons"}],  # not in the request: does not count
    })
    spec = plan_request(GERMAN, _client(server), multilingual=True)
    assert len(server.requests) == 1 and GERMAN in server.requests[0]["body"]["messages"][-1]["content"]
    assert spec.class_names == ["cat", "trash bin"] and spec.n_images == 200
    assert spec.tasks == [Task.detection] and spec.formats == [ExportFormat.coco] and spec.style == "rain"
    assert (spec.width, spec.height) == (512, 512)  # 640x480 is not in the request
    assert spec.questions == [] and spec.request == GERMAN
    said = {(n.kind, n.text) for n in spec.notices}
    assert {("cannot_deliver", "depth maps"), ("not_understood", "dragon"), ("not_understood", "640x480"),
            ("not_understood", "bunt")} <= said  # no translation given for it


def test_words_without_a_translation_are_named_back(server: FakeOpenAIServer) -> None:
    server.queue_json({"english": "Generate 100 images of cups and plates in a kitchen, raining",
                       "glossary": [{"source": "图片", "english": "images"}, {"source": "厨房", "english": "kitchen"},
                                    {"source": "杯子", "english": "cups"}, {"source": "盘子", "english": "plates"}]})
    spec = plan_request("生成100张厨房里杯子和盘子的图片，下雨", _client(server), multilingual=True)
    assert spec.class_names == ["cup", "plate"] and spec.n_images == 100 and "kitchen" in spec.scene
    said = {n.text for n in spec.notices if n.kind == "not_understood"}
    assert "下雨" in said and "raining" in said  # untranslated in the request, unbacked in the translation


def test_a_failed_translation_asks_for_english(server: FakeOpenAIServer) -> None:
    server.queue_text("not json")
    server.queue_text("still not json")
    spec = plan_request(GERMAN, _client(server), multilingual=True)
    assert spec.questions[0].source == "language" and spec.questions[0].text == UNTRANSLATED_QUESTION


def test_the_factory_lets_only_a_configured_endpoint_read_other_languages(server: FakeOpenAIServer) -> None:
    server.queue_json({"english": "200 images of cats", "glossary": [{"source": "Bilder", "english": "images"},
                                                                   {"source": "Katzen", "english": "cats"}]})
    configured = RunConfig(llm=LLMConfig(base_url=server.base_url, model="fake", max_retries=1))
    assert make_planner(configured, None, None)("200 Bilder von Katzen").class_names == ["cat"]
    embedded = make_planner(RunConfig(), None, None)("200 Bilder von Katzen")  # no server is started for it
    assert embedded.questions[0].source == "language"
