"""Captions: the checker, templates that never name an absent class or a wrong count, LLM/VLM with a fake server."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer
from language_scenes import Thing, scene

from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.annotate.language import LanguageOptions, add_language_labels, caption_facts, check_caption
from synthloop.tools.annotate.language.captions import make_captions, template_captions
from synthloop.tools.annotate.language.describe import describe_scene
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.llm.client import LLMClient
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.types import Annotation, Difficulty, Layout, ObjectSpec, Task, TaskSpec

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

FACTS = caption_facts([("cup", ["red"]), ("cup", ["red"]), ("plate", [])], class_names=["cup", "plate", "fork"])


@pytest.mark.parametrize(
    ("caption", "problem"),
    [
        ("Two red cups and a plate.", None),
        ("2 red cups and a plate on a table.", None),
        ("Cups and a plate.", None),
        ("Two red cups and no forks.", None),
        ("Three objects: two red cups and a plate.", None),
        ("The plate is on the left of the two cups.", None),
        ("Three cups and a plate.", "says 3 cup"),
        ("A cup and a plate.", "says 1 cup"),
        ("Plates and two cups.", "says several plate"),
        ("Two cups, a plate and a fork.", "'fork', which is not in the image"),
        ("Two cups near a dog.", "'dog', which is not in the image"),
        ("Two blue cups and a plate.", "no visible cup is"),
        ("A red plate and two cups.", "no visible plate is"),
        ("An orange cup and a plate.", "'orange'"),
        ("Two red cups on a purple plate.", "'purple'"),
        ("Four objects: two red cups and a plate.", "says 4 objects"),
    ],
)
def test_checker(caption: str, problem: str | None) -> None:
    problems = check_caption(caption, FACTS)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_checker_reads_a_colour_class_name_before_a_noun_as_an_attribute() -> None:
    problems = check_caption("An orange cup and a plate.", FACTS)
    assert not any("'orange', which is not in the image" in p for p in problems)
    assert check_caption("Two cups and an orange.", FACTS)  # the fruit, absent


def test_allowed_scene_text_is_cut_out_before_checking() -> None:
    caption = "A kitchen table with forks with two red cups and a plate."
    assert check_caption(caption, FACTS)
    assert check_caption(caption, FACTS.with_allowed("kitchen table with forks")) == []
    assert check_caption("A kitchen table with forks and a fork.", FACTS.with_allowed("kitchen table with forks"))


def _spec(size: int = 256) -> TaskSpec:
    return TaskSpec(
        objects=[ObjectSpec(name="cup", attributes=["red"], min_count=0, max_count=4),
                 ObjectSpec(name="plate", min_count=0, max_count=3),
                 ObjectSpec(name="fork", attributes=["light blue"], min_count=0, max_count=3),
                 ObjectSpec(name="apple", min_count=0, max_count=2),
                 ObjectSpec(name="book", min_count=1, max_count=2)],
        width=size, height=size, difficulty=Difficulty.hard, scene="kitchen table", style="photo",
        tasks=[Task.detection, Task.captioning],
    )


def test_template_captions_never_name_an_absent_class_or_a_wrong_count() -> None:
    spec = _spec()
    sampler, renderer, annotator = ProceduralLayoutSampler(), CompositorRenderer(), ExactAnnotator()
    absent_seen = hidden_seen = 0
    for seed in range(40):
        layout = sampler.sample(spec, seed)
        annotation = annotator.annotate(layout, renderer.render(layout, spec, seed), spec)
        if seed % 3 == 0:  # as if the first object had ended up fully hidden (what the exact annotator writes)
            first = annotation.instances[0].model_copy(update={"area": 0, "bbox": (0.0, 0.0, 0.0, 0.0)})
            annotation = annotation.model_copy(update={"instances": [first, *annotation.instances[1:]]})
        captions = add_language_labels(layout, annotation, spec, seed=seed,
                                       options=LanguageOptions(captions_per_image=5)).captions
        assert 4 <= len(captions) <= 5 and len(set(captions)) == len(captions)
        visible = [i for i in annotation.instances if i.area > 0]
        hidden_seen += len(visible) < len(annotation.instances)
        counts = {o.name: sum(i.category == o.name for i in visible) for o in spec.objects}
        for name, count in counts.items():
            attributes = next(" ".join(o.attributes) for o in spec.objects if o.name == name)
            noun = f"{attributes} {name}".strip()
            for caption in captions:
                text = caption.lower()
                if count == 0:
                    absent_seen += 1
                    assert not re.search(rf"\b{name}s?\b", text), (caption, name)
                elif count == 1:
                    assert re.search(rf"\ban? {noun}\b", text), (caption, noun)
                else:
                    assert re.search(rf"\b{NUMBERS[count]} {noun}s\b", text), (caption, noun, count)
        facts = caption_facts([(i.category, layout.objects[i.layout_index].attributes) for i in visible],
                              spec.class_names).with_allowed(spec.scene, spec.style)
        assert all(check_caption(c, facts) == [] for c in captions), captions
    assert absent_seen and hidden_seen  # the property was exercised on absent classes and hidden objects


def test_hidden_objects_are_not_counted_and_an_empty_image_names_nothing() -> None:
    things = [Thing("cup", (20, 20, 60, 60)), Thing("cup", (100, 20, 140, 60), depth=1),
              Thing("cup", (110, 30, 130, 50), depth=0), Thing("plate", (20, 120, 80, 160))]
    layout, annotation, spec = scene(things, tasks=[Task.captioning])
    assert annotation.instances[2].area == 0
    captions = add_language_labels(layout, annotation, spec, seed=1).captions
    assert all("two cups" in c.lower() and "three" not in c.lower() for c in captions), captions

    hidden = [Thing("cup", (20, 20, 40, 40), depth=0), Thing("plate", (10, 10, 60, 60), depth=1)]
    layout, annotation, spec = scene(hidden, tasks=[Task.captioning])
    empty_annotation = annotation.model_copy(update={"instances": [
        i.model_copy(update={"area": 0, "bbox": (0.0, 0.0, 0.0, 0.0)}) for i in annotation.instances]})
    captions = add_language_labels(layout, empty_annotation, spec, seed=1).captions
    assert len(captions) == 3
    assert all(not re.search(r"\b(cups?|plates?)\b", c.lower()) for c in captions), captions


def test_a_scene_naming_an_absent_class_is_not_repeated() -> None:
    things = [Thing("cup", (20, 20, 60, 60))]
    layout, annotation, spec = scene(things, tasks=[Task.captioning], scene_text="street with cars")
    captions = add_language_labels(layout, annotation, spec, seed=0,
                                   options=LanguageOptions(captions_per_image=5)).captions
    assert all("car" not in c.lower() for c in captions), captions
    layout, annotation, spec = scene(things, tasks=[Task.captioning], scene_text="kitchen table")
    captions = add_language_labels(layout, annotation, spec, seed=0,
                                   options=LanguageOptions(captions_per_image=5)).captions
    assert any("kitchen table" in c.lower() for c in captions), captions


def test_captions_are_deterministic_per_seed_and_vary_across_seeds() -> None:
    things = [Thing("cup", (20, 20, 60, 60), attributes=("red",)),
              Thing("cup", (100, 20, 140, 60), attributes=("red",)),
              Thing("plate", (20, 120, 80, 160)), Thing("fork", (150, 150, 170, 190))]
    layout, annotation, spec = scene(things, tasks=[Task.captioning], scene_text="kitchen table")
    runs = {seed: add_language_labels(layout, annotation, spec, seed=seed).captions for seed in range(8)}
    assert runs[3] == add_language_labels(layout, annotation, spec, seed=3).captions
    assert len({tuple(c) for c in runs.values()}) > 1


def test_caption_count_is_bounded() -> None:
    things = [Thing("cup", (20, 20, 60, 60))]
    layout, annotation, spec = scene(things, tasks=[Task.captioning])
    with pytest.raises(ValueError, match="captions_per_image"):
        LanguageOptions(captions_per_image=6)
    with pytest.raises(ValueError, match="captions per image"):
        template_captions(describe_scene(layout, annotation), spec, seed=0, count=1)


def _client(server: FakeOpenAIServer) -> LLMClient:
    return LLMClient(server.base_url, model="fake", max_retries=0, max_reasks=0, retry_wait_s=(0.01, 0.01))


def _two_cups_and_a_plate() -> tuple[Layout, Annotation, TaskSpec]:
    things = [Thing("cup", (20, 20, 60, 60), attributes=("red",)),
              Thing("cup", (100, 20, 140, 60), attributes=("red",)),
              Thing("plate", (20, 120, 80, 160))]
    return scene(things, tasks=[Task.captioning])


def test_llm_paraphrases_are_checked_and_fall_back_to_templates(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = _two_cups_and_a_plate()
    templates = template_captions(describe_scene(layout, annotation), spec, seed=5, count=3)
    server.queue_json({"captions": ["A plate lies beside two red cups.",
                                    "Two red cups, a plate and a fork.",  # a fork the image does not have
                                    "Three red cups and a plate."]})  # wrong count
    labelled = add_language_labels(layout, annotation, spec, seed=5, llm=_client(server),
                                   options=LanguageOptions(paraphrase=True))
    assert len(server.requests) == 1  # one call per image
    body = server.requests[0]["body"]
    assert body["response_format"]["type"] == "json_object" and "captions" in body["response_format"]["schema"][
        "properties"]
    assert labelled.captions == ["A plate lies beside two red cups.", templates[1], templates[2]]
    assert labelled.caption_sources == ["llm", "template", "template"]


def test_paraphrase_is_opt_in(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = _two_cups_and_a_plate()
    labelled = add_language_labels(layout, annotation, spec, seed=5, llm=_client(server))
    assert server.requests == [] and labelled.caption_sources == ["template"] * 3


def test_an_unreachable_llm_leaves_the_template_captions(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = _two_cups_and_a_plate()
    server.queue_status(500)
    labelled = add_language_labels(layout, annotation, spec, seed=2, llm=_client(server),
                                   options=LanguageOptions(paraphrase=True))
    assert labelled.captions == template_captions(describe_scene(layout, annotation), spec, seed=2, count=3)
    assert labelled.caption_sources == ["template"] * 3


def test_vlm_captions_are_checked_the_same_way(server: FakeOpenAIServer) -> None:
    layout, annotation, spec = _two_cups_and_a_plate()
    image = np.full((layout.height, layout.width, 3), 128, np.uint8)
    server.queue_json({"captions": ["Two red cups above a plate.", "A cat sleeping on a sofa."]})
    captions = make_captions(describe_scene(layout, annotation), spec, seed=0, count=3, vlm=_client(server),
                             image=image)
    parts = server.requests[0]["body"]["messages"][0]["content"]
    assert any(p.get("type") == "image_url" for p in parts)
    assert captions.captions[0] == "Two red cups above a plate."
    assert captions.sources == ["vlm", "template", "template"]
    assert "cat" not in " ".join(captions.captions).lower()
