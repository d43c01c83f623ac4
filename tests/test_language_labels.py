"""add_language_labels: only the asked tasks, instances untouched, determinism, model relations, the eval."""

from __future__ import annotations

import json

import numpy as np
from fake_openai_server import FakeOpenAIServer
from language_scenes import ALL_TASKS, Thing, scene

from synthloop.tools.annotate.language import LanguageOptions, add_language_labels
from synthloop.tools.llm.client import LLMClient
from synthloop.tools.types import Relation, Task

THINGS = [
    Thing("person", (40, 40, 90, 170), depth=0),
    Thing("cup", (85, 90, 110, 115), depth=1, attributes=("red",)),
    Thing("table", (20, 150, 190, 195), depth=2),
    Thing("cup", (150, 120, 175, 145), depth=3, attributes=("red",)),
]


MODEL_RELATIONS = LanguageOptions(max_model_relations=8)


def _client(server: FakeOpenAIServer) -> LLMClient:
    return LLMClient(server.base_url, model="fake", max_retries=0, max_reasks=0, retry_wait_s=(0.01, 0.01))


def test_only_the_asked_tasks_are_filled_and_instances_stay() -> None:
    carried = [Relation(subject=0, predicate="left of", object=3)]
    for tasks, filled in (
        ([Task.detection], set()),
        ([Task.detection, Task.captioning], {"captions"}),
        ([Task.referring_expressions], {"referring"}),
        ([Task.scene_graph], {"relations"}),
        (ALL_TASKS, {"captions", "referring", "relations"}),
    ):
        layout, annotation, spec = scene(THINGS, tasks=tasks)
        annotation = annotation.model_copy(update={"relations": carried})
        labelled = add_language_labels(layout, annotation, spec, seed=0)
        assert labelled.instances == annotation.instances
        assert bool(labelled.captions) == ("captions" in filled)
        assert len(labelled.caption_sources) == len(labelled.captions)
        assert bool(labelled.referring) == ("referring" in filled)
        if "relations" in filled:
            assert labelled.relations and labelled.relations != carried
        else:
            assert labelled.relations == carried  # untouched


def test_same_seed_same_labels() -> None:
    layout, annotation, spec = scene(THINGS, scene_text="dining room")
    first = add_language_labels(layout, annotation, spec, seed=42)
    assert first.model_dump_json() == add_language_labels(layout, annotation, spec, seed=42).model_dump_json()


def test_functional_relations_from_the_llm_need_the_second_check(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = scene(THINGS, tasks=[Task.scene_graph])
    server.queue_json({"relations": [
        {"subject": 0, "predicate": "Holding", "object": 1},
        {"subject": 0, "predicate": "sitting at", "object": 2},
        {"subject": 0, "predicate": "next to", "object": 3},  # spatial: the rules' business
        {"subject": 0, "predicate": "looking at", "object": 9},  # no such object
        {"subject": 1, "predicate": "holding", "object": 1},  # itself
    ]})
    server.queue_json({"verdicts": [
        {"index": 1, "holds": True, "confidence": 0.9},
        {"index": 2, "holds": True, "confidence": 0.4},  # not confident enough
    ]})
    labelled = add_language_labels(layout, annotation, spec, seed=0, llm=_client(server), options=MODEL_RELATIONS)
    assert len(server.requests) == 2
    checked = server.requests[1]["body"]["messages"][0]["content"]
    assert "1. 0 (person) holding 1 (cup)" in checked and "2. 0 (person) sitting at 2 (table)" in checked
    assert "next to" not in checked and "looking at" not in checked
    model = [r for r in labelled.relations if r.source == "llm"]
    assert [(r.subject, r.predicate, r.object, r.score) for r in model] == [(0, "holding", 1, 0.9)]
    assert all(r.source == "rule" for r in labelled.relations if r not in model)


def test_a_requested_functional_relation_is_kept_only_when_the_model_agrees(server: FakeOpenAIServer) -> None:
    requested = [Relation(subject=0, predicate="holding", object=1, source="layout"),
                 Relation(subject=0, predicate="holding", object=3, source="layout")]
    layout, annotation, spec = scene(THINGS, tasks=[Task.scene_graph], relations=requested)
    server.queue_json({"verdicts": [{"index": 1, "holds": True, "confidence": 0.8},
                                    {"index": 2, "holds": False, "confidence": 0.9}]})
    labelled = add_language_labels(layout, annotation, spec, seed=0, llm=_client(server))  # no proposals asked
    assert len(server.requests) == 1
    kept = [(r.subject, r.predicate, r.object, r.source, r.score) for r in labelled.relations if r.source != "rule"]
    assert kept == [(0, "holding", 1, "layout", 0.8)]


def test_model_relations_are_opt_in(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = scene(THINGS, tasks=[Task.scene_graph])
    labelled = add_language_labels(layout, annotation, spec, seed=0, llm=_client(server))
    assert server.requests == [] and all(r.source == "rule" for r in labelled.relations)


def test_a_failing_model_keeps_only_rule_relations(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = scene(THINGS, tasks=[Task.scene_graph])
    server.queue_text("not json at all")
    labelled = add_language_labels(layout, annotation, spec, seed=0, llm=_client(server), options=MODEL_RELATIONS)
    assert labelled.relations and all(r.source == "rule" for r in labelled.relations)
    without = add_language_labels(layout, annotation, spec, seed=0)
    assert labelled.relations == without.relations


def test_the_vlm_sees_numbered_boxes_and_checks_relations(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = scene(THINGS, tasks=[Task.scene_graph])
    image = np.full((layout.height, layout.width, 3), 200, np.uint8)
    server.queue_json({"relations": [{"subject": 0, "predicate": "holding", "object": 1}]})
    server.queue_json({"verdicts": [{"index": 1, "holds": True, "confidence": 1.0}]})
    options = LanguageOptions(max_model_relations=2)
    labelled = add_language_labels(layout, annotation, spec, seed=0, image=image, vlm=_client(server),
                                   options=options)
    for request in server.requests:
        parts = request["body"]["messages"][0]["content"]
        assert any(p.get("type") == "image_url" for p in parts)
    assert "at most 2 relations" in json.dumps(server.requests[0]["body"]["messages"])
    assert [(r.subject, r.predicate, r.object, r.source) for r in labelled.relations if r.source != "rule"] == [
        (0, "holding", 1, "vlm")]


def test_labels_eval_runs_and_counts() -> None:
    from synthloop.evals.labels import format_labels_report, run_labels_eval

    report = run_labels_eval(n=3, size=192, seed=1, noise_px=2)
    assert report.caption_images[1] == 3
    assert sum(t for _, t in report.relations.values()) > 0 and report.sentences[1] > 0
    assert all(0 <= c <= t for c, t in report.relations.values())
    text = format_labels_report(report)
    assert "spatial relation precision" in text and "referring" in text and "captions" in text
