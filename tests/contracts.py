"""Contracts every backend of a tool keeps, as test mixins: a backend joins with a small test class.

    class TestCompositor(RendererContract):
        backend = CompositorRenderer()

Every mixin checks the protocol (`id`, `capabilities`, methods), the options model (it validates its own
defaults, forbids unknown options, names constructor keywords), and the registry round trip (name → class →
built from a config block); each adds what its tool promises: determinism per seed, batch invariance, sizes,
instance maps that match the pixels, valid masks and boxes. Class attributes tune the inputs (`spec`, `seeds`,
the sampler and renderer that feed an annotator, `options` for the registry build). A backend that needs files
(a tiny model) sets `backend` and `options` in a class-scoped fixture:

    class TestTinyDiffusion(RendererContract):
        @pytest.fixture(autouse=True, scope="class")
        @classmethod
        def _model(cls, tmp_path_factory):
            cls.options = {"model": str(build_tiny_model(tmp_path_factory.mktemp("sd")))}
            cls.backend = DiffusionRenderer(**cls.options)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from export_testdata import make_samples, make_spec

from synthloop.tools.annotate.base import AnnotateRequest, Annotator
from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.backend import Backend, BackendBlock, Capabilities, Registry, options_model
from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.registry import JUDGES
from synthloop.tools.export.base import Exporter
from synthloop.tools.export.registry import EXPORTERS
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.layout.registry import LAYOUTS
from synthloop.tools.masks import decode_rle, mask_bbox, rle_area, rle_bbox
from synthloop.tools.render.base import BaseRenderer, Renderer, RenderRequest, RenderResult
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.registry import RENDERERS
from synthloop.tools.types import Annotation, Decision, Difficulty, Layout, ObjectSpec, Task, TaskSpec

SPEC = TaskSpec(
    objects=[
        ObjectSpec(name="cup", attributes=["blue"], min_count=1, max_count=3),
        ObjectSpec(name="plate", min_count=0, max_count=2),
        ObjectSpec(name="fork", min_count=1, max_count=2),
    ],
    width=192,
    height=160,
    tasks=[Task.detection, Task.instance_segmentation, Task.scene_graph],
    difficulty=Difficulty.hard,
)


class BackendContract:
    """What every backend keeps: its protocol, an options model that validates, a registry round trip."""

    backend: ClassVar[Any]
    registry: ClassVar[Registry[Any]]
    protocol: ClassVar[type]
    options: ClassVar[dict[str, Any]] = {}  # a config block's options (required ones at least)
    registry_name: ClassVar[str | None] = None  # the backend's registry name, when it is not its id

    @property
    def name(self) -> str:
        return self.registry_name or self.backend.id

    def test_implements_its_protocol(self) -> None:
        assert isinstance(self.backend, self.protocol)
        assert isinstance(self.backend.id, str) and self.backend.id
        if "capabilities" in getattr(self.protocol, "__annotations__", {}):
            assert isinstance(self.backend.capabilities, Capabilities)
        requires = getattr(self.backend, "requires", ())
        assert isinstance(requires, tuple) and all(isinstance(r, str) for r in requires)

    def test_options_model_validates_its_defaults(self) -> None:
        cls = type(self.backend)
        model = options_model(cls)
        assert model.model_config.get("extra") == "forbid", "unknown options must be refused"
        fields = model.model_fields
        # pydantic does not validate defaults unless asked: a default outside its own bounds shows up here.
        values = {name: field.get_default(call_default_factory=True) for name, field in fields.items()
                  if not field.is_required()}
        model.model_validate({**values, **self.options})
        if model is getattr(cls, "Options", None):
            undocumented = [name for name, field in fields.items() if not field.description]
            assert not undocumented, f"options without a Field description: {undocumented}"
        builder = getattr(cls, "from_options", Backend.from_options)
        if builder.__func__ is Backend.from_options.__func__:  # built with its options as constructor keywords
            parameters = inspect.signature(cls.__init__).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
                assert set(fields) <= set(parameters), "every option is a constructor keyword of the same name"

    def test_registry_round_trip(self) -> None:
        assert self.name in self.registry, f"'{self.name}' is not registered in {self.registry.tool}s"
        cls = self.registry.resolve(self.name)
        assert cls is type(self.backend)
        block = {"backend": self.name, **self.options}
        parsed = BackendBlock.model_validate(block)
        assert parsed.model_dump() == (block if self.options else self.name), "a block serialises back as written"
        assert BackendBlock.model_validate(parsed.model_dump()) == parsed
        built = self.registry.build(parsed)
        assert type(built) is cls and built.id == self.backend.id
        assert self.registry.capabilities(self.name) == getattr(cls, "capabilities", Capabilities())


class LayoutContract(BackendContract):
    """Layout samplers: same spec + seed → same layout; layouts that fit the spec."""

    registry = LAYOUTS
    protocol = LayoutSampler
    spec: ClassVar[TaskSpec] = SPEC
    seeds: ClassVar[range] = range(6)

    def layouts(self) -> list[Layout]:
        return [self.backend.sample(self.spec, seed) for seed in self.seeds]

    def test_same_seed_same_layout_and_seeds_matter(self) -> None:
        layouts = self.layouts()
        assert self.layouts() == layouts, "same spec + seed must give the same layout"
        assert len({lay.model_dump_json() for lay in layouts}) == len(layouts), "different seeds must differ"

    def test_layouts_fit_the_spec(self) -> None:
        for lay in self.layouts():
            assert (lay.width, lay.height) == (self.spec.width, self.spec.height)
            assert lay.objects, "a layout must place at least one object"
            for obj in lay.objects:
                x0, y0, x1, y1 = obj.box
                assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
            counts = Counter(o.category for o in lay.objects)
            assert set(counts) <= set(self.spec.class_names)
            for spec_obj in self.spec.objects:
                assert spec_obj.min_count <= counts[spec_obj.name] <= spec_obj.max_count
            n = len(lay.objects)
            assert all(0 <= r.subject < n and 0 <= r.object < n and r.subject != r.object for r in lay.relations)


MAP_SHIFTS = ((-3, 0), (3, 0), (-3, 1), (3, 1))  # (pixels, axis)


def _label_boundaries(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def _gradient(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float64).mean(axis=2)
    gradient = np.zeros_like(grey)
    gradient[:, 1:] = np.abs(np.diff(grey, axis=1))
    gradient[1:, :] = np.maximum(gradient[1:, :], np.abs(np.diff(grey, axis=0)))
    return gradient


class RendererContract(BackendContract):
    """Renderers: images at the layout's size, same request → same pixels whatever the batch, instance maps
    (when declared) that describe the pixels."""

    registry = RENDERERS
    protocol = Renderer
    spec: ClassVar[TaskSpec] = SPEC
    sampler: ClassVar[LayoutSampler] = ProceduralLayoutSampler()
    seeds: ClassVar[tuple[int, ...]] = (1, 2, 3)
    prompt: ClassVar[str] = "a kitchen table"

    def requests(self, spec: TaskSpec | None = None) -> list[RenderRequest]:
        spec = spec or self.spec
        return [RenderRequest(self.sampler.sample(spec, seed), spec, seed, self.prompt) for seed in self.seeds]

    def render(self, request: RenderRequest) -> RenderResult:
        return self.backend.render(request.layout, request.spec, request.seed, prompt=request.prompt)

    def test_images_have_the_layout_size(self) -> None:
        narrow = self.spec.model_copy(update={"width": self.spec.width // 2})
        for spec in (self.spec, narrow):
            for request in self.requests(spec)[:2]:
                image = self.render(request).image
                assert image.shape == (spec.height, spec.width, 3) and image.dtype == np.uint8

    def test_same_request_same_pixels_and_seeds_matter(self) -> None:
        first, other = self.requests()[:2]
        result, again = self.render(first), self.render(first)
        assert result.image.tobytes() == again.image.tobytes(), "same layout + spec + seed must give the same pixels"
        if result.instance_map is not None:
            assert np.array_equal(result.instance_map, again.instance_map)
        reseeded = dataclasses.replace(first, seed=other.seed)
        assert not np.array_equal(result.image, self.render(reseeded).image), "seeds must matter"

    def test_batch_equals_single_renders(self) -> None:
        requests = self.requests()
        singles = [self.render(r) for r in requests]
        batch = self.backend.render_batch(requests)
        backwards = self.backend.render_batch(requests[::-1])[::-1]
        for results in (batch, backwards):
            assert len(results) == len(requests)
            for single, batched in zip(singles, results, strict=True):
                assert batched.image.tobytes() == single.image.tobytes(), "a request's pixels must not depend on " \
                                                                           "the rest of its batch"
                assert (batched.instance_map is None) == (single.instance_map is None)
                if single.instance_map is not None:
                    assert np.array_equal(batched.instance_map, single.instance_map)

    def test_provenance_and_declared_capabilities(self) -> None:
        capabilities = self.backend.capabilities
        assert capabilities.provides_masks or not capabilities.exact_labels, "exact labels need an instance map"
        for request in self.requests():
            result = self.render(request)
            assert result.backend.get("renderer") == self.backend.id and result.backend.get("model")
            json.dumps(result.info)  # provenance copied into the manifest
            assert (result.instance_map is not None) == capabilities.provides_masks
            if capabilities.text_conditioned:
                assert request.prompt in result.prompt, "the prompt given is part of the prompt recorded"

    def test_instance_map_describes_the_pixels(self) -> None:
        if not self.backend.capabilities.provides_masks:
            pytest.skip("no instance map declared")
        on_map, moved = np.zeros(2), np.zeros((4, 2))  # (sum of pixel steps, boundary pixels)
        for request in self.requests():
            result, n = self.render(request), len(request.layout.objects)
            instance_map = result.instance_map
            assert instance_map is not None and instance_map.shape == result.image.shape[:2]
            assert np.issubdtype(instance_map.dtype, np.integer)
            assert int(instance_map.min()) >= 0 and int(instance_map.max()) <= n
            assert len(result.amodal_areas) == n
            visible = np.bincount(instance_map.ravel(), minlength=n + 1)[1:]
            assert all(int(v) <= a for v, a in zip(visible, result.amodal_areas, strict=True)), \
                "an object cannot show more pixels than its unoccluded area"
            gradient = _gradient(result.image)
            boundaries = _label_boundaries(instance_map)
            on_map += gradient[boundaries].sum(), boundaries.sum()
            for k, (shift, axis) in enumerate(MAP_SHIFTS):
                shifted = _label_boundaries(np.roll(instance_map, shift, axis))
                moved[k] += gradient[shifted].sum(), shifted.sum()
        # The map's label boundaries sit on the image's edges: the pixels step more along them than along the
        # same boundaries moved a few pixels any way (a misaligned or unrelated map fails this).
        step_on_map = on_map[0] / max(on_map[1], 1)
        assert all(step_on_map > total / max(count, 1) for total, count in moved), "the map is off the pixels"


    def test_image_edits_when_declared(self) -> None:
        """A renderer declaring `edits_images` edits deterministically at the image's size (the seed and the
        instruction matter); any other refuses."""
        request = self.requests()[0]
        image = self.render(request).image
        if not self.backend.capabilities.edits_images:
            if isinstance(self.backend, BaseRenderer):
                with pytest.raises(NotImplementedError):
                    self.backend.edit_image(image, "make the cup red", 0)
            return
        edited = self.backend.edit_image(image, "make the cup red", 5)
        assert edited.shape == image.shape and edited.dtype == np.uint8
        assert edited.tobytes() == self.backend.edit_image(image.copy(), "make the cup red", 5).tobytes()
        assert not np.array_equal(edited, self.backend.edit_image(image, "make the cup red", 6)), "seeds must matter"
        assert not np.array_equal(edited, self.backend.edit_image(image, "brighten the plate", 5)), \
            "the instruction must matter"
        provenance = self.backend.edit_provenance()
        assert provenance.get("editor") and all(isinstance(v, str) for v in provenance.values())


class AnnotatorContract(BackendContract):
    """Annotators: valid boxes, RLE masks and areas consistent with each other; same input → same labels,
    whatever the batch; a declared need for the instance map is honoured.

    `exact_masks = True`: the annotator must reproduce the render's instance map exactly (one instance per
    layout object, its visible pixels, tight box, relations kept). Model annotators set it to False and only
    need labels that are valid and consistent with their own masks.
    """

    registry = ANNOTATORS
    protocol = Annotator
    exact_masks: ClassVar[bool] = True
    spec: ClassVar[TaskSpec] = SPEC
    sampler: ClassVar[LayoutSampler] = ProceduralLayoutSampler()
    renderer: ClassVar[Renderer] = CompositorRenderer()
    seeds: ClassVar[range] = range(6)

    def requests(self) -> list[AnnotateRequest]:
        requests = []
        for seed in self.seeds:
            layout = self.sampler.sample(self.spec, seed)
            requests.append(AnnotateRequest(layout, self.renderer.render(layout, self.spec, seed), self.spec))
        return requests

    def annotate(self, request: AnnotateRequest) -> Annotation:
        return self.backend.annotate(request.layout, request.render, request.spec)

    def check_valid(self, annotation: Annotation, layout: Layout) -> None:
        """Boxes inside the image, known classes, masks of the image's size whose area and tight box are the
        instance's."""
        width, height = layout.width, layout.height
        for inst in annotation.instances:
            assert inst.category in self.spec.class_names
            x, y, w, h = inst.bbox
            assert x >= 0 and y >= 0 and w >= 0 and h >= 0 and x + w <= width and y + h <= height
            if inst.visible_fraction is not None:
                assert 0.0 <= inst.visible_fraction <= 1.0
            if inst.segmentation is None:
                continue
            mask = decode_rle(inst.segmentation)
            assert mask.shape == (height, width)
            assert inst.area == rle_area(inst.segmentation) == int(mask.sum())
            if inst.area:
                assert inst.bbox == rle_bbox(inst.segmentation) == mask_bbox(mask)

    def check_exact(self, annotation: Annotation, request: AnnotateRequest) -> None:
        """The instance map, reproduced: one instance per layout object with exactly its visible pixels."""
        layout, render = request.layout, request.render
        assert len(annotation.instances) == len(layout.objects)
        for k, inst in enumerate(annotation.instances):
            assert inst.layout_index == k and inst.category == layout.objects[k].category
            truth = render.instance_map == k + 1
            assert inst.segmentation is not None
            assert np.array_equal(decode_rle(inst.segmentation), truth), "the mask must be the object's visible pixels"
            assert inst.area == int(truth.sum()) and inst.bbox == mask_bbox(truth)
            assert inst.visible_fraction is not None and 0.25 < inst.visible_fraction <= 1.0
        assert annotation.relations == layout.relations

    def test_annotations_are_valid(self) -> None:
        for request in self.requests():
            annotation = self.annotate(request)
            self.check_valid(annotation, request.layout)
            if self.exact_masks:
                self.check_exact(annotation, request)

    def test_same_input_same_annotation_whatever_the_batch(self) -> None:
        requests = self.requests()
        singles = [self.annotate(r) for r in requests]
        assert [self.annotate(r) for r in requests] == singles
        assert self.backend.annotate_batch(requests) == singles
        assert self.backend.annotate_batch(requests[::-1])[::-1] == singles

    def test_declared_need_for_the_instance_map(self) -> None:
        request = self.requests()[0]
        bare = dataclasses.replace(request.render, instance_map=None, amodal_areas=[])
        if self.backend.capabilities.needs_instance_map:
            with pytest.raises(ValueError, match=r"instance map|masks"):
                self.backend.annotate(request.layout, bare, request.spec)
        else:
            self.check_valid(self.backend.annotate(request.layout, bare, request.spec), request.layout)


class JudgeContract(BackendContract):
    """Judges: a verdict with the judge's id, reasons for anything but accept, the same verdicts for the same
    samples in the same order; a stateless judge is unaffected by the samples it was told about."""

    registry = JUDGES
    protocol = Judge
    n_items: ClassVar[int] = 4
    size: ClassVar[int] = 128

    def items(self) -> list[JudgeInput]:
        from synthloop.evals.defects import clean_items

        return clean_items(self.n_items, size=self.size, seed=0)

    def fresh(self) -> Judge:
        return self.registry.build({"backend": self.name, **self.options})

    def judge_in_order(self, judge: Judge, items: list[JudgeInput]) -> list[Any]:
        verdicts = []
        for item in items:
            verdicts.append(judge.judge(item))
            judge.observe(item.sample)  # as the loop does for kept samples
        return verdicts

    def test_verdicts_are_well_formed(self) -> None:
        for verdict in self.judge_in_order(self.fresh(), self.items()):
            assert verdict.judge == self.backend.id and isinstance(verdict.decision, Decision)
            assert all(isinstance(reason, str) and reason for reason in verdict.reasons)
            if verdict.decision is not Decision.accept:
                assert verdict.reasons, "a reject or an edit says why"
            if verdict.decision is Decision.edit:
                assert verdict.fix, "an edit carries its instruction"

    def test_same_samples_same_verdicts(self) -> None:
        items = self.items()
        assert self.judge_in_order(self.fresh(), items) == self.judge_in_order(self.fresh(), items)

    def test_stateless_judges_ignore_what_they_observe(self) -> None:
        if self.backend.capabilities.stateful:
            pytest.skip("stateful: its verdicts depend on the samples kept before")
        items, judge = self.items(), self.fresh()
        before = [judge.judge(item) for item in items]
        for item in items:
            judge.observe(item.sample)
        assert [judge.judge(item) for item in items] == before


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class ExporterContract(BackendContract):
    """Exporters: files only under the output directory, the same bytes for the same samples in any order of
    arrival."""

    registry = EXPORTERS
    protocol = Exporter
    spec: ClassVar[TaskSpec] = make_spec(tasks=("detection", "instance_segmentation", "captioning",
                                                "referring_expressions", "scene_graph", "semantic_segmentation"))
    rich: ClassVar[bool] = True  # samples with captions, referring expressions, relations, certificates

    def export(self, root: Path, *, reverse: bool = False) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Export the test samples into a fresh root/out; (files before, files after)."""
        shutil.rmtree(root, ignore_errors=True)
        out = root / "out"
        samples = make_samples(out, 8, rich=self.rich)
        before = _tree(root)
        exporter = self.registry.build({"backend": self.name, **self.options})
        exporter.setup(out, self.spec)
        for sample in (reversed(samples) if reverse else samples):
            exporter.export_sample(sample)
        exporter.close()
        return before, _tree(root)

    def test_writes_files_only_under_the_output_directory(self, tmp_path: Path) -> None:
        before, after = self.export(tmp_path)
        written = set(after) - set(before)
        assert written, "an exporter writes something"
        assert all(name.startswith("out/") for name in after)
        assert all(after[name] == data for name, data in before.items()), "the images are left as they were"

    def test_same_samples_same_bytes_in_any_order(self, tmp_path: Path) -> None:
        _, first = self.export(tmp_path)  # the same directory each time: files may name their own path
        _, again = self.export(tmp_path)
        _, backwards = self.export(tmp_path, reverse=True)
        assert again == first, "same samples must give the same bytes"
        assert backwards == first, "the order of arrival must not matter"
