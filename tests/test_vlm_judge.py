"""VLM judges against the scripted OpenAI-compatible server: images sent as data URLs, reasons first, decision
mapping, re-asks, both presentation orders, position inconsistency and preference probabilities."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer
from PIL import Image

from synthloop.prompts import load_prompt
from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.pairwise import PairwiseJudge
from synthloop.tools.critic.vlm import PairwiseVLMJudge, VLMJudge, draw_annotation
from synthloop.tools.llm import LLMClient, LLMOutputError, user_message
from synthloop.tools.masks import encode_rle, mask_bbox
from synthloop.tools.types import Annotation, Decision, Instance, Layout, ObjectSpec, Sample, TaskSpec

H = W = 64
SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate")],
                width=W, height=H, scene="kitchen table")
RED, BLUE = (200, 30, 30), (30, 30, 200)


def client(server: FakeOpenAIServer, **kwargs: object) -> LLMClient:
    options: dict = {"model": "fake-vlm", "max_retries": 0, "max_reasks": 2, "retry_wait_s": (0.01, 0.02)}
    options.update(kwargs)
    return LLMClient(server.base_url, **options)


def solid(colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((H, W, 3), colour, dtype=np.uint8)


def item(colour: tuple[int, int, int] = (120, 120, 120)) -> JudgeInput:
    mask = np.zeros((H, W), bool)
    mask[12:40, 10:30] = True
    cup = Instance(category="cup", bbox=mask_bbox(mask), area=int(mask.sum()), segmentation=encode_rle(mask))
    sample = Sample(id="s1", index=0, attempt=0, seed=1, split="train", image_path="images/train/s1.png",
                    width=W, height=H, layout=Layout(width=W, height=H, objects=[], seed=1),
                    annotation=Annotation(instances=[cup]))
    return JudgeInput(sample=sample, image=solid(colour), spec=SPEC)


def sent_images(request: dict) -> list[Image.Image]:
    """The images of a recorded request, decoded from their data URLs."""
    images = []
    for part in first_user_parts(request):
        if part["type"] == "image_url":
            url = part["image_url"]["url"]
            assert url.startswith("data:image/png;base64,")
            images.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    return images


def first_user_parts(request: dict) -> list[dict]:
    return next(m["content"] for m in request["body"]["messages"] if m["role"] == "user")


GOOD = {"reasons": ["cup 0 is tightly boxed"], "realism": 4, "label_correctness": 5, "decision": "accept",
        "edit_instruction": ""}


def test_user_message_builds_text_and_image_parts() -> None:
    assert user_message("hi") == {"role": "user", "content": "hi"}
    message = user_message("look", [b"\x89PNG"])
    assert message["content"][0] == {"type": "text", "text": "look"}
    assert message["content"][1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()


def test_pointwise_request_carries_the_annotated_image_and_rubric(server: FakeOpenAIServer) -> None:
    server.queue_json(GOOD)
    judge = VLMJudge(client(server))
    assert isinstance(judge, Judge)
    verdict = judge.judge(item())
    assert verdict.decision == Decision.accept and verdict.judge == "vlm.pointwise"
    assert verdict.reasons == ["cup 0 is tightly boxed"]
    assert verdict.scores == {"realism": 4.0, "label_correctness": 5.0, "agreement": 1.0}
    assert verdict.prompt_hash == load_prompt("vlm_pointwise").sha256
    parts = first_user_parts(server.requests[0])
    assert parts[0]["type"] == "text" and "0: cup at 10,12,30,40" in parts[0]["text"]
    assert "kitchen table" in parts[0]["text"] and "reasons" in parts[0]["text"]
    (picture,) = sent_images(server.requests[0])
    assert picture.size == (256, 256)  # small images are enlarged so the labels stay legible
    scale = 256 / W
    edge = np.asarray(picture)[int(25 * scale), int(10 * scale)]  # left edge of the cup's box
    assert tuple(edge) == (230, 25, 75)  # first palette colour: class 'cup'
    assert tuple(np.asarray(picture)[200, 200]) == (120, 120, 120)  # pixels away from the box untouched


def test_schema_lists_reasons_first(server: FakeOpenAIServer) -> None:
    server.queue_json(GOOD)
    VLMJudge(client(server)).judge(item())
    schema = server.requests[0]["body"]["response_format"]["schema"]
    keys = list(schema["properties"])
    assert keys[0] == "reasons" and keys.index("decision") > keys.index("realism")


@pytest.mark.parametrize(
    ("answer", "decision", "fix"),
    [("Keep", Decision.accept, None), ("discard", Decision.reject, None), ("fix", Decision.edit, "move cup 0 left"),
     ("REJECT", Decision.reject, None)],
)
def test_decisions_are_mapped(server: FakeOpenAIServer, answer: str, decision: Decision, fix: str | None) -> None:
    server.queue_json({**GOOD, "decision": answer, "edit_instruction": fix or ""})
    verdict = VLMJudge(client(server)).judge(item())
    assert verdict.decision == decision and verdict.fix == fix


def test_invalid_json_is_asked_again(server: FakeOpenAIServer) -> None:
    server.queue_text("The image looks fine, I would accept it.")
    server.queue_json(GOOD)
    verdict = VLMJudge(client(server)).judge(item())
    assert verdict.decision == Decision.accept and len(server.requests) == 2
    retry = server.requests[1]["body"]["messages"]
    assert retry[-2]["role"] == "assistant" and "invalid" in retry[-1]["content"]
    assert sent_images(server.requests[1])  # the re-ask still carries the image


def test_a_decision_written_before_the_reasons_is_asked_again(server: FakeOpenAIServer) -> None:
    server.queue_text(json.dumps({"decision": "accept", "reasons": ["fine"], "realism": 3, "label_correctness": 3}))
    server.queue_json({**GOOD, "decision": "reject", "reasons": ["cup 0 box is loose"]})
    verdict = VLMJudge(client(server)).judge(item())
    assert "reasons first" in server.requests[1]["body"]["messages"][-1]["content"]
    assert verdict.decision == Decision.reject and verdict.reasons == ["cup 0 box is loose"]


def test_an_edit_without_instruction_is_asked_again_then_fails(server: FakeOpenAIServer) -> None:
    for _ in range(3):
        server.queue_json({**GOOD, "decision": "edit"})
    with pytest.raises(LLMOutputError, match="PointwiseAnswer"):
        VLMJudge(client(server)).judge(item())
    assert len(server.requests) == 3
    assert "edit_instruction" in server.requests[1]["body"]["messages"][-1]["content"]


def test_several_samples_take_the_majority_and_break_ties_strictly(server: FakeOpenAIServer) -> None:
    server.queue_json({**GOOD, "decision": "reject", "reasons": ["plate missing"], "realism": 2})
    server.queue_json({**GOOD, "realism": 4})
    server.queue_json({**GOOD, "decision": "reject", "reasons": ["plate missing", "blurry"], "realism": 3})
    verdict = VLMJudge(client(server), samples=3).judge(item())
    assert verdict.decision == Decision.reject and verdict.scores["agreement"] == pytest.approx(2 / 3)
    assert verdict.reasons == ["plate missing", "blurry"] and verdict.scores["realism"] == pytest.approx(3.0)
    assert {r["body"]["temperature"] for r in server.requests} == {0.7}  # repeats must be able to differ

    server.queue_json(GOOD)
    server.queue_json({**GOOD, "decision": "edit", "edit_instruction": "add a plate"})
    tie = VLMJudge(client(server), samples=2, temperature=0.3).judge(item())
    assert tie.decision == Decision.edit and tie.fix == "add a plate"
    assert server.requests[-1]["body"]["temperature"] == 0.3


def pairwise_answer(winner: str) -> dict:
    return {"reasons": [f"{winner} looks better"], "winner": winner}


def colour_of(picture: Image.Image) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(picture)[5, 5])


def test_pairwise_asks_both_orders(server: FakeOpenAIServer) -> None:
    server.queue_json(pairwise_answer("first"))  # (a, b): a shown first wins
    server.queue_json(pairwise_answer("second"))  # (b, a): a shown second wins
    judge = PairwiseVLMJudge(client(server))
    result = judge.compare(solid(RED), solid(BLUE), "cups on a table", a_id="red", b_id="blue")
    assert len(server.requests) == 2
    assert [colour_of(p) for p in sent_images(server.requests[0])] == [RED, BLUE]
    assert [colour_of(p) for p in sent_images(server.requests[1])] == [BLUE, RED]
    assert "cups on a table" in first_user_parts(server.requests[0])[0]["text"]
    assert [(m.a, m.b, m.winner, m.swapped) for m in result.matches] == [
        ("red", "blue", "a", False), ("red", "blue", "a", True)]
    assert result.p_a == 1.0 and result.winner == "a"
    assert result.n_pairs == 1 and result.inconsistent_pairs == 0 and result.position_inconsistency == 0.0
    assert result.first_position_rate == 0.5
    assert result.prompt_hash == load_prompt("vlm_pairwise").sha256
    assert all(m.judge == "vlm.pairwise" for m in result.matches)


def test_position_bias_is_recorded_as_inconsistency(server: FakeOpenAIServer) -> None:
    for _ in range(4):  # always picks whatever is shown first, whatever it shows
        server.queue_json(pairwise_answer("Image 1"))
    result = PairwiseVLMJudge(client(server), samples=2).compare(solid(RED), solid(BLUE), a_id="r", b_id="b")
    assert [m.winner for m in result.matches] == ["a", "b", "a", "b"]
    assert [m.swapped for m in result.matches] == [False, True, False, True]
    assert result.p_a == 0.5 and result.winner == "tie"
    assert result.n_pairs == 2 and result.inconsistent_pairs == 2 and result.position_inconsistency == 1.0
    assert result.first_position_rate == 1.0


def test_preference_probability_from_several_samples(server: FakeOpenAIServer) -> None:
    # Rounds: (a,b) then (b,a). Votes by content: a, a | tie, a | a, b  →  P(a) = (4 + ½) / 6.
    for winner in ("first", "second", "tie", "second", "first", "first"):
        server.queue_json(pairwise_answer(winner))
    result = PairwiseVLMJudge(client(server), samples=3).compare(solid(RED), solid(BLUE))
    assert [m.winner for m in result.matches] == ["a", "a", "tie", "a", "a", "b"]
    assert result.p_a == pytest.approx(4.5 / 6)
    assert result.n_pairs == 3 and result.inconsistent_pairs == 2  # (tie, a) and (a, b) disagree
    assert result.first_position_rate == pytest.approx(3 / 5)
    assert {r["body"]["temperature"] for r in server.requests} == {0.7}


def test_pairwise_compare_items_draws_annotations(server: FakeOpenAIServer) -> None:
    server.queue_json(pairwise_answer("tie"))
    server.queue_json(pairwise_answer("tie"))
    judge = PairwiseVLMJudge(client(server))
    assert isinstance(judge, PairwiseJudge)
    result = judge.compare_items(item(RED), item(BLUE), a_id="x", b_id="y")
    assert result.p_a == 0.5 and result.inconsistent_pairs == 0
    first, _ = sent_images(server.requests[0])
    assert colour_of(first) == RED and (230, 25, 75) in {tuple(p) for p in np.asarray(first).reshape(-1, 3)}
    assert "Objects per image: cup (1–2), plate (1–3)" in first_user_parts(server.requests[0])[0]["text"]


def test_draw_annotation_shrinks_large_images() -> None:
    big = np.zeros((2000, 1000, 3), np.uint8)
    assert draw_annotation(big, None, max_side=1024).size == (512, 1024)
    with pytest.raises(ValueError, match="uint8 RGB"):
        draw_annotation(np.zeros((4, 4, 3), np.float32), None)
