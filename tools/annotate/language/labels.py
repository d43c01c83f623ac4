"""`add_language_labels`: captions, referring expressions and scene-graph relations for one annotated image.

Called after the instance annotator. Only what `spec.tasks` asks for is filled (captioning → `captions` and
`caption_sources`, referring_expressions → `referring`, scene_graph → `relations`); instances and every
other field are kept as they are. Without model clients everything is rule-based and the same seed gives the
same labels. Model calls are opt-in (`paraphrase`, `max_model_relations`): measured here, the embedded
SmolLM2-135M answered the paraphrase schema with an empty list after 40–140 s per image on 2 busy cores, so
they pay off only with a capable endpoint. VLM captions are made whenever a VLM client and the image are given.

Scene graph, in order of precedence within `max_relations`:
1. requested relations (the layout's, and any the annotator already carried), kept only when confirmed: a
   spatial predicate by the rules on the visible annotation, any other predicate by the model check;
2. model relations (functional / interaction) that the second model check confirms, at most
   `max_model_relations`;
3. rule relations (`relations.py`), strongest predicates and nearest pairs first, at most
   `max_relations_per_object` per subject.
Relation indices are instance indices; hidden instances (area 0) take part in none.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.annotate.language.captions import MAX_CAPTIONS, MIN_CAPTIONS, make_captions
from synthloop.tools.annotate.language.describe import Scene, describe_scene
from synthloop.tools.annotate.language.model_relations import ModelRelations, is_spatial, normal_predicate
from synthloop.tools.annotate.language.referring import referring_expressions
from synthloop.tools.annotate.language.relations import Candidate, candidate_relations, select
from synthloop.tools.llm.client import LLMClient
from synthloop.tools.types import Annotation, Layout, Relation, Task, TaskSpec

logger = logging.getLogger(__name__)


class LanguageOptions(BaseModel):
    """How many language labels to make per image and how strict the model checks are."""

    model_config = ConfigDict(extra="forbid")

    captions_per_image: int = Field(default=3, ge=MIN_CAPTIONS, le=MAX_CAPTIONS, description="Captions per image.")
    paraphrase: bool = Field(default=False, description="Let the LLM (when given) paraphrase template captions "
                                                        "(one call per image; worth it with a capable endpoint).")
    referring_sentences: int = Field(default=3, ge=1, le=8, description="Most sentences per referred object.")
    max_relations: int = Field(default=32, ge=0, le=1000, description="Most scene-graph relations per image.")
    max_relations_per_object: int = Field(default=6, ge=1, le=100,
                                          description="Most rule relations with the same subject.")
    max_model_relations: int = Field(default=0, ge=0, le=16,
                                     description="Most model-proposed (functional) relations per image (two calls "
                                                 "per image when > 0 and a client is given); 0 = none.")
    model_relation_min_score: float = Field(default=0.7, ge=0.0, le=1.0,
                                            description="Least checker confidence for a model relation.")
    max_tokens: int = Field(default=600, ge=64, le=8192, description="Token limit of each model answer.")


def add_language_labels(
    layout: Layout,
    annotation: Annotation,
    spec: TaskSpec,
    *,
    seed: int,
    image: Any = None,
    llm: LLMClient | None = None,
    vlm: LLMClient | None = None,
    options: LanguageOptions | None = None,
) -> Annotation:
    """The annotation with the language labels `spec.tasks` asks for (see the module docstring).

    image: the rendered image (PIL or (H, W, 3) uint8), needed only by the VLM; llm / vlm: optional clients
    (`LLMClient`) for caption paraphrases, VLM captions and functional relations.
    """
    options = options or LanguageOptions()
    tasks = set(spec.tasks)
    if not tasks & {Task.captioning, Task.referring_expressions, Task.scene_graph}:
        return annotation
    scene = describe_scene(layout, annotation)
    candidates = _rule_candidates(scene)
    updates: dict[str, Any] = {}
    if Task.scene_graph in tasks:
        picture = _numbered(image, annotation) if vlm is not None else None
        models = ModelRelations(llm, vlm, image=image, annotation_picture=picture, max_tokens=options.max_tokens)
        updates["relations"] = _scene_graph(layout, annotation, scene, candidates, options, models)
    if Task.referring_expressions in tasks:
        rule = [Relation(subject=c.subject, predicate=c.predicate, object=c.object) for c in candidates]
        updates["referring"] = referring_expressions(scene, rule, seed=seed, max_sentences=options.referring_sentences)
    if Task.captioning in tasks:
        captions = make_captions(scene, spec, seed=seed, count=options.captions_per_image,
                                 llm=llm if options.paraphrase else None, vlm=vlm, image=image,
                                 max_tokens=options.max_tokens)
        updates["captions"], updates["caption_sources"] = captions.captions, captions.sources
    return Annotation(**{**dict(annotation), **updates})


def _rule_candidates(scene: Scene) -> list[Candidate]:
    """Every clearly true rule relation between visible objects, subject/object as instance indices."""
    found = candidate_relations([o.region for o in scene.objects])
    index = [o.index for o in scene.objects]
    return [Candidate(index[c.subject], c.predicate, index[c.object], c.distance) for c in found]


def _requested(layout: Layout, annotation: Annotation) -> list[Relation]:
    """The layout's relations in instance indices, plus relations the annotator already carried."""
    instance_of = {inst.layout_index: i for i, inst in enumerate(annotation.instances) if inst.layout_index is not None}
    requested = []
    for r in layout.relations:
        if r.subject in instance_of and r.object in instance_of:
            requested.append(r.model_copy(update={"subject": instance_of[r.subject], "object": instance_of[r.object]}))
    requested.extend(annotation.relations)
    unique: dict[tuple[int, str, int], Relation] = {}
    for r in requested:
        predicate = normal_predicate(r.predicate)
        if predicate is not None:
            unique.setdefault((r.subject, predicate, r.object), r.model_copy(update={"predicate": predicate}))
    return list(unique.values())


def _scene_graph(layout: Layout, annotation: Annotation, scene: Scene, candidates: list[Candidate],
                 options: LanguageOptions, models: ModelRelations) -> list[Relation]:
    visible = {o.index for o in scene.objects}
    true = {(c.subject, c.predicate, c.object) for c in candidates}
    confirmed, to_check = [], []
    for r in _requested(layout, annotation):
        if r.subject not in visible or r.object not in visible or r.subject == r.object:
            continue
        if is_spatial(r.predicate):
            if (r.subject, r.predicate, r.object) in true:
                confirmed.append(r)
        elif models.available:
            to_check.append(r)
        else:
            logger.info("requested relation %s dropped: no model to check it", r)
    asked = {_key(r) for r in to_check}
    proposed: list[Relation] = []
    if models.available and options.max_model_relations > 0:
        proposed, _ = models.propose(scene, max_relations=options.max_model_relations)
        proposed = [r for r in proposed if _key(r) not in asked]
    checked = models.check(scene, [*to_check, *proposed], min_score=options.model_relation_min_score)
    requested_kept = [*confirmed, *(r for r in checked if _key(r) in asked)]
    model_kept = [r for r in checked if _key(r) not in asked][: options.max_model_relations]

    kept = requested_kept[: options.max_relations]
    kept += model_kept[: max(0, options.max_relations - len(kept))]
    taken = {_key(r) for r in kept}
    budget = max(0, options.max_relations - len(kept))
    rules = select((c for c in candidates if (c.subject, c.predicate, c.object) not in taken),
                   max_relations=budget, max_per_subject=options.max_relations_per_object)
    return [*kept, *(Relation(subject=c.subject, predicate=c.predicate, object=c.object) for c in rules)]


def _key(r: Relation) -> tuple[int, str, int]:
    return (r.subject, r.predicate, r.object)


def _numbered(image: Any, annotation: Annotation) -> Any:
    """The image with numbered instance boxes (what the VLM sees for relations), or None without an image."""
    if image is None:
        return None
    from synthloop.tools.critic.vlm import draw_annotation

    return draw_annotation(image, annotation)
