"""Graph nodes. Each takes the state and the runtime context (`Deps`) and returns a partial state update.

Work moves in batches: one pass of layout → render → annotate → critique handles up to `batch_size`
samples, so orchestration cost per sample stays far below render cost.
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import Future
from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from PIL import Image
from pydantic import ValidationError

from synthloop.agent.contract import backend_notices, blocking, with_notices
from synthloop.agent.deps import Deps
from synthloop.agent.engines.base import Rendered
from synthloop.agent.engines.prefetch import PrefetchJob
from synthloop.agent.errors import UserInputError
from synthloop.agent.state import RunState, Slot
from synthloop.agent.store import (
    add_kept,
    drop_export_session,
    export_session,
    iter_rejected,
    kept_ids,
    read_kept,
    record_rejection,
)
from synthloop.tools.annotate.base import AnnotateRequest
from synthloop.tools.annotate.language import add_language_labels
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.best_of_n import pairwise_compare, pick_best
from synthloop.tools.critic.duplicates import perceptual_hash, pixel_sha256
from synthloop.tools.critic.ensemble import combine
from synthloop.tools.critic.rank import rank_samples
from synthloop.tools.critic.repair import RepairAction, drop_instances, plan_repair
from synthloop.tools.export.edits import EDITS_DIR
from synthloop.tools.export.records import write_spec
from synthloop.tools.export.session import ExportSession
from synthloop.tools.io import atomic_write_bytes, atomic_write_json, atomic_write_png, encode_png
from synthloop.tools.render.base import RenderRequest, RenderResult, can_edit_images, edit_provenance
from synthloop.tools.seeding import derive_seed, split_for_index
from synthloop.tools.types import Annotation, Decision, Layout, Sample, Task, TaskSpec, Verdict

LANGUAGE_TASKS = {Task.captioning, Task.referring_expressions, Task.scene_graph}


def _deps(runtime: Runtime[Deps] | None) -> Deps:
    """The runtime context; default Deps when the graph runs without one (e.g. under `langgraph dev`)."""
    context = getattr(runtime, "context", None)
    if isinstance(context, Deps):
        return context
    from synthloop.agent.default_deps import default_deps

    return default_deps()


def _spec(state: RunState) -> TaskSpec:
    return TaskSpec.model_validate(state["spec"])


def plan(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Turn the request (plus any clarifying answers) into a TaskSpec."""
    deps = _deps(runtime)
    request = " ".join([state.get("request", ""), *state.get("answers", [])]).strip()
    deps.report("planning", request=request)
    spec = deps.planner(request)
    return {"spec": spec.model_dump(mode="json"), "approved": False}


def _only_questions_from(spec: TaskSpec, source: str) -> bool:
    """True when every open question has this source ("revision": left by an edit the reviser could not apply;
    "language": the request is in a language the planner does not read)."""
    return bool(spec.questions) and all(q.source == source for q in spec.questions)


def _undeliverable(spec: TaskSpec) -> list[str]:
    """'what (because why)' for each task or format the request asked for that synthloop cannot produce."""
    return [f"{n.text} ({n.reason})" if n.reason else n.text for n in blocking(spec)]


def _reviewed(deps: Deps, spec: TaskSpec) -> TaskSpec:
    """The spec with what the chosen backends cannot deliver named back (notices) and how they deliver each
    class (plan notes), so the user approves what will actually run."""
    notices, notes = backend_notices(spec, deps.renderer, deps.annotator)
    notes += deps.sampler.review(spec)
    return with_notices(spec, notices).model_copy(update={"plan_notes": notes[:60]})


def approve(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Show the spec; wait for approval, an answer to the planner's question, an edit, or a cancel.

    Replies (the value the front-end resumes the interrupt with):
      {"action": "approve"} · {"action": "cancel"} · {"action": "answer", "text": …} (plan again with it) ·
      {"action": "message", "text": "make it 300"} (a conversational edit, applied by the reviser) ·
      {"action": "edit", "spec": {…}} (a spec edited by hand, e.g. in the web table).
    An answer to an edit's question is another edit; an answer to a language question replaces the request.
    The interrupt payload carries the spec, the questions' texts, the notices and the defaults used.
    Edits lead back here, so the user approves the spec that will actually run. With auto-approve (`--yes`)
    documented defaults are taken, but a spec with an open question, or one asking for a task or format
    that cannot be delivered, is refused, never guessed.
    """
    deps = _deps(runtime)
    spec = _reviewed(deps, _spec(state))
    if spec.model_dump(mode="json") != state["spec"]:
        state = {**state, "spec": spec.model_dump(mode="json")}
    if deps.auto_approve:
        if spec.questions:
            raise UserInputError(f"the plan has an open question: {spec.questions[0].text} "
                                 "(answer it in the request, or run without --yes)")
        if undeliverable := _undeliverable(spec):
            raise UserInputError(f"cannot deliver {'; '.join(undeliverable)} "
                                 "(change the request, or run without --yes to see the plan)")
        write_spec(deps.out_dir, spec)
        deps.report("approved", spec=state["spec"], auto=True)
        return {"approved": True, "spec": state["spec"]}
    reply = interrupt({"kind": "approve", "spec": state["spec"], "questions": [q.text for q in spec.questions],
                       "notices": [n.model_dump(mode="json") for n in spec.notices],
                       "defaults_used": spec.defaults_used})
    action = reply.get("action") if isinstance(reply, dict) else None
    history = list(state.get("messages", []))
    if action == "cancel":
        return {"cancelled": True, "stop_reason": "cancelled by the user"}
    if action == "answer" and deps.reviser is not None and _only_questions_from(spec, "revision"):
        action = "message"  # the question came from an edit the reviser could not apply: revise again
    if action == "answer" and _only_questions_from(spec, "language"):
        text = str(reply.get("text", ""))  # the request again, rephrased: it replaces the first one
        return {"request": text, "answers": [], "spec": None,
                "messages": [*history, {"role": "user", "content": text}]}
    if action == "answer":
        text = str(reply.get("text", ""))
        return {"answers": [*state.get("answers", []), text], "spec": None,
                "messages": [*history, {"role": "user", "content": text}]}
    if action == "message":
        if deps.reviser is None:
            raise UserInputError("this run cannot edit its spec in conversation (no planner configured)")
        text = str(reply.get("text", ""))
        revised = deps.reviser(spec, text)
        return {"spec": revised.model_dump(mode="json"), "approved": False,
                "messages": [*history, {"role": "user", "content": text}]}
    if action == "edit":
        try:
            edited = TaskSpec.model_validate(reply["spec"])
        except (KeyError, ValidationError) as exc:
            raise UserInputError(f"the edited spec is invalid: {exc}") from exc
        return {"spec": edited.model_dump(mode="json"), "approved": False}
    if action == "approve":
        if spec.questions:
            raise UserInputError(f"cannot start with an open question: {spec.questions[0].text}")
        write_spec(deps.out_dir, spec)
        deps.report("approved", spec=state["spec"], auto=False)
        return {"approved": True, "spec": state["spec"]}
    raise UserInputError(f"unknown reply to the approval question: {reply!r}")


def layout(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Open the next batch: retried slots first, then fresh sample indices, within the attempt budget."""
    deps = _deps(runtime)
    spec = _spec(state)
    retries: list[Slot] = list(state.get("retry_slots", []))
    next_index = state.get("next_index", 0)
    attempts = state.get("attempts", 0)
    budget = math.ceil(spec.n_images * spec.budgets.max_total_attempts_factor)
    fresh_needed = spec.n_images - state.get("kept", 0) - len(retries)
    slots: list[Slot] = []
    while len(slots) < deps.config.batch_size and attempts + len(slots) < budget:
        if retries:
            slots.append(retries.pop(0))
        elif fresh_needed > 0:
            slots.append({"index": next_index, "attempt": 0})
            next_index += 1
            fresh_needed -= 1
        else:
            break
    with deps.timers.phase("layout"):
        batch = [_new_sample(deps, spec, slot).model_dump(mode="json") for slot in slots]
    update: dict[str, Any] = {"batch": batch, "retry_slots": retries, "next_index": next_index,
                              "attempts": attempts + len(slots)}
    if not batch:
        update["stop_reason"] = (f"attempt budget exhausted ({attempts} attempts for {spec.n_images} images): "
                                 f"kept {state.get('kept', 0)}")
    return update


def _new_sample(deps: Deps, spec: TaskSpec, slot: Slot) -> Sample:
    """The sample a slot opens: id, seed, split, layout (the slot's own for a re-render, else sampled from the
    seed) and, for text-conditioned renderers, its prompt. A function of spec and slot only, so the render
    node builds the next batch's fresh samples ahead of time (pipelining) and this node opens those."""
    fresh = slot["attempt"] == 0 and not slot.get("layout") and not slot.get("repairs")
    if fresh and deps.prefetch is not None and (built := deps.prefetch.sample(f"{slot['index']:06d}", spec)):
        return built
    index, attempt = slot["index"], slot["attempt"]
    seed = derive_seed(spec.seed, index, attempt)
    split = split_for_index(index, spec.splits)
    sample_id = f"{index:06d}"
    sample = Sample(
        id=sample_id, index=index, attempt=attempt, seed=seed, split=split,
        image_path=f"images/{split}/{sample_id}.png", width=spec.width, height=spec.height,
        layout=Layout.model_validate(slot["layout"]) if slot.get("layout") else deps.sampler.sample(spec, seed),
        repairs=slot.get("repairs", []),
    )
    if _text_conditioned(deps):
        sample = sample.model_copy(update={"prompt": _expanded_prompt(spec, sample)})
    return sample


def _text_conditioned(deps: Deps) -> bool:
    """Whether the renderer declares that it takes a text prompt; the compositor does not."""
    return deps.renderer.capabilities.text_conditioned


def _expanded_prompt(spec: TaskSpec, sample: Sample) -> str:
    """A per-image scene prompt, varied within the request and deduplicated (see tools/prompting/expand.py)."""
    from synthloop.tools.prompting.expand import image_prompt

    return image_prompt(spec, sample.layout, sample.index)


def candidate_seed(sample: Sample, k: int) -> int:
    """Render seed of best-of-n candidate k (candidate 0 is the sample's own seed)."""
    return sample.seed if k == 0 else derive_seed(sample.seed, "candidate", k)


def _render_request(spec: TaskSpec, sample: Sample, k: int = 0) -> RenderRequest:
    """What to render for candidate k of a sample (the prompt matters to text-conditioned renderers only)."""
    return RenderRequest(layout=sample.layout, spec=spec, seed=candidate_seed(sample, k), prompt=sample.prompt)


def _start_renders(deps: Deps, spec: TaskSpec, jobs: list[tuple[Sample, int]]) -> list[Future[Rendered]]:
    """Futures for candidate k of each (sample, k): the prefetched render where it was made for exactly this
    request, else one started now (urgent). Candidate 0 comes PNG-encoded, ready to write."""
    requests = [_render_request(spec, s, k) for s, k in jobs]
    futures: list[Future[Rendered] | None] = [
        deps.prefetch.take(s.id, k, request, encode=k == 0) if deps.prefetch is not None else None
        for (s, k), request in zip(jobs, requests, strict=True)]
    for encode in (True, False):
        missing = [i for i, ((_, k), future) in enumerate(zip(jobs, futures, strict=True))
                   if future is None and (k == 0) == encode]
        started = deps.engine.submit_renders([requests[i] for i in missing],
                                             png_level=deps.config.png_compress_level if encode else None)
        for i, future in zip(missing, started, strict=True):
            futures[i] = future
    return futures  # type: ignore[return-value]


def _finish_renders(deps: Deps, jobs: list[tuple[Sample, int]],
                    futures: list[Future[Rendered]]) -> list[RenderResult]:
    """Wait for each render in order and write candidate 0's image (a best-of-n winner is written when chosen)."""
    results = []
    for (sample, k), future in zip(jobs, futures, strict=True):
        rendered = future.result()
        if k == 0:
            png = rendered.png if rendered.png is not None else encode_png(
                rendered.result.image, compress_level=deps.config.png_compress_level)
            atomic_write_bytes(deps.out_dir / sample.image_path, png)
        results.append(rendered.result)
    return results


def _render_samples(deps: Deps, spec: TaskSpec, jobs: list[tuple[Sample, int]]) -> list[RenderResult]:
    """Render candidate k of each (sample, k) through the engine and write candidate 0's image."""
    return _finish_renders(deps, jobs, _start_renders(deps, spec, jobs))


def _prefetch_next(deps: Deps, spec: TaskSpec, state: RunState, n: int) -> None:
    """Start rendering (at low priority) the fresh samples that follow this batch, as many as are surely needed
    even if every sample in flight is kept, within one batch and the attempt budget. Retries are not known
    yet: they are rendered when their batch opens."""
    if deps.prefetch is None:
        return
    next_index = state.get("next_index", 0)
    undecided = len(state.get("batch", [])) + len(state.get("retry_slots", []))
    needed = spec.n_images - state.get("kept", 0) - undecided
    budget = math.ceil(spec.n_images * spec.budgets.max_total_attempts_factor) - state.get("attempts", 0)
    count = min(deps.config.batch_size, needed, budget)
    jobs = []
    for index in range(next_index, next_index + max(0, count)):
        if deps.prefetch.holds(f"{index:06d}"):
            continue
        sample = _new_sample(deps, spec, {"index": index, "attempt": 0})
        jobs += [PrefetchJob(sample.id, k, _render_request(spec, sample, k), encode=k == 0, sample=sample)
                 for k in range(n)]
    deps.prefetch.offer(jobs)


def _render_fields(result: RenderResult) -> dict[str, Any]:
    """What a sample records of its render: the renderer's provenance, and the difficulty it measured."""
    score = result.info.get("difficulty_score")
    return {"render_info": result.info,
            "difficulty_score": float(score) if isinstance(score, int | float) and 0 <= score <= 1 else None}


def render(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Render the batch (n candidates each under best-of-n) and write each image atomically; meanwhile the
    engine starts on the fresh samples that follow (pipelining: see agent/engines/prefetch.py)."""
    deps = _deps(runtime)
    spec = _spec(state)
    samples = [Sample.model_validate(s) for s in state["batch"]]
    n = state.get("best_of_n", 1)
    jobs = [(sample, k) for sample in samples for k in range(n)]
    with deps.timers.phase("render"):
        futures = _start_renders(deps, spec, jobs)
        _prefetch_next(deps, spec, state, n)
        results = _finish_renders(deps, jobs, futures)
    batch = []
    for i, sample in enumerate(samples):
        candidates = results[i * n:(i + 1) * n]
        deps.scratch[sample.id] = candidates[0]
        if n > 1:
            deps.candidates[sample.id] = candidates
        backend = {**candidates[0].backend, "layout": deps.sampler.id}
        batch.append(sample.model_copy(update={"backend": backend, "prompt": candidates[0].prompt or sample.prompt,
                                               **_render_fields(candidates[0])})
                     .model_dump(mode="json"))
    deps.report("rendered", n=len(batch))
    return {"batch": batch}


def _renders_for(deps: Deps, spec: TaskSpec, samples: list[Sample]) -> list[RenderResult]:
    """The batch's renders from scratch memory; those missing (after a resume) are rendered again, together
    and deterministically (after selection, sample.seed is the winner's)."""
    missing = [s for s in samples if s.id not in deps.scratch]
    if missing:
        with deps.timers.phase("render"):
            for sample, result in zip(missing, _render_samples(deps, spec, [(s, 0) for s in missing]), strict=True):
                deps.scratch[sample.id] = result
    return [deps.scratch[s.id] for s in samples]


def _with_language(deps: Deps, spec: TaskSpec, sample: Sample, annotation: Annotation,
                   image: np.ndarray) -> Annotation:
    """The annotation with the captions, referring expressions and scene-graph relations the spec asks for,
    made from what is visible (seeded by the sample; see tools/annotate/language)."""
    return add_language_labels(sample.layout, annotation, spec, seed=sample.seed, image=image,
                               llm=deps.llm_client, vlm=deps.vlm_client, options=deps.config.language)


def annotate(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Annotate every sample of the batch."""
    deps = _deps(runtime)
    spec = _spec(state)
    samples = [Sample.model_validate(s) for s in state["batch"]]
    renders = _renders_for(deps, spec, samples)
    with deps.timers.phase("annotate"):
        annotations = deps.engine.annotate([AnnotateRequest(s.layout, r, spec)
                                            for s, r in zip(samples, renders, strict=True)])
    if LANGUAGE_TASKS & set(spec.tasks):
        with deps.timers.phase("language"):
            annotations = deps.engine.map(lambda job: _with_language(deps, spec, *job),
                                          zip(samples, annotations, (r.image for r in renders), strict=True))
    batch = [
        s.model_copy(update={"annotation": a, "backend": {**s.backend, "annotator": deps.annotator.id}})
        .model_dump(mode="json")
        for s, a in zip(samples, annotations, strict=True)
    ]
    return {"batch": batch}


def select(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Best-of-n: compare each sample's n candidate renders pairwise and keep the winner.

    The pairwise judge is the VLM when one is configured, else the rule-score heuristic. The winner's seed,
    annotation and image replace candidate 0's; a `select.best_of_n` verdict records the matches played.
    """
    deps = _deps(runtime)
    spec = _spec(state)
    n = state.get("best_of_n", 1)
    batch = []
    for sample in (Sample.model_validate(s) for s in state["batch"]):
        with deps.timers.phase("select"):
            renders = deps.candidates.pop(sample.id, None) or deps.engine.render(
                [_render_request(spec, sample, k) for k in range(n)])
            # Candidate 0 is the one the annotate node already labelled.
            unlabelled = [k for k in range(len(renders)) if k or sample.annotation is None]
            labelled = dict(zip(unlabelled, deps.engine.annotate(
                [AnnotateRequest(sample.layout, renders[k], spec) for k in unlabelled]), strict=True))
            items = {}
            for k, result in enumerate(renders):
                annotation = labelled.get(k, sample.annotation)
                candidate = sample.model_copy(update={"seed": candidate_seed(sample, k), "annotation": annotation})
                items[f"{sample.id}.c{k}"] = JudgeInput(sample=candidate, image=result.image, spec=spec)
            winner, matches = pick_best(list(items), pairwise_compare(deps.pairwise, items),
                                        judge=getattr(deps.pairwise, "id", "pairwise"))
            k = int(winner.rsplit(".c", 1)[1])
            wins = sum((m.a == winner and m.winner == "a") or (m.b == winner and m.winner == "b") for m in matches)
            verdict = Verdict(judge="select.best_of_n", decision=Decision.accept,
                              reasons=[f"candidate {k} of {n} won {wins} of {len(matches)} comparisons"],
                              scores={"candidate": float(k), "wins": float(wins), "matches": float(len(matches))})
            chosen = items[winner].sample.model_copy(update={"verdicts": [verdict], **_render_fields(renders[k])})
            if k != 0 and LANGUAGE_TASKS & set(spec.tasks) and chosen.annotation is not None:
                chosen = chosen.model_copy(update={"annotation": _with_language(
                    deps, spec, chosen, chosen.annotation, renders[k].image)})
        if k != 0:
            atomic_write_png(deps.out_dir / sample.image_path, renders[k].image,
                             compress_level=deps.config.png_compress_level)
        deps.scratch[sample.id] = renders[k]
        batch.append(chosen.model_dump(mode="json"))
    return {"batch": batch}


def _judge(deps: Deps, spec: TaskSpec, sample: Sample, image: np.ndarray,
           precomputed: dict[int, Verdict] | None = None) -> tuple[Sample, Decision]:
    """Run every judge (after any selection verdicts already on the sample) and combine by the ensemble rule.

    `precomputed` holds verdicts of stateless judges already run in parallel, by judge position.
    """
    item = JudgeInput(sample=sample, image=image, spec=spec)
    done = precomputed or {}
    verdicts = [done[i] if i in done else judge.judge(item) for i, judge in enumerate(deps.judges)]
    previous = [v for v in sample.verdicts if v.judge == "select.best_of_n"]
    combined = combine(verdicts, deps.config.ensemble)
    if deps.config.ensemble.rule != "any_reject":
        verdicts.append(combined)
    return sample.model_copy(update={"verdicts": [*previous, *verdicts]}), combined.decision


def _prejudge(deps: Deps, spec: TaskSpec, sample: Sample, image: np.ndarray) -> tuple[Sample, dict[int, Verdict]]:
    """Hash the pixels and run the stateless judges (safe in parallel); stateful ones run later, in order."""
    sample = sample.model_copy(update={"image_sha256": pixel_sha256(image), "phash": perceptual_hash(image)})
    item = JudgeInput(sample=sample, image=image, spec=spec)
    return sample, {i: judge.judge(item) for i, judge in enumerate(deps.judges)
                    if not judge.capabilities.stateful}


def _repair_in_place(deps: Deps, spec: TaskSpec, sample: Sample, render: RenderResult,
                     action: RepairAction) -> tuple[Sample, Decision] | None:
    """Apply a repair that keeps the attempt (drop annotations, or edit the image) and judge again (once);
    None when the action is not one of those or does not apply."""
    if action.kind == "edit_image":
        return _edit_in_place(deps, spec, sample, render, action)
    if action.kind != "drop_instances" or sample.annotation is None:
        return None
    try:
        annotation = drop_instances(sample.annotation, action.instances)
    except ValueError:
        return None
    if LANGUAGE_TASKS & set(spec.tasks):  # captions count, and expressions single out, what is left
        annotation = _with_language(deps, spec, sample, annotation, render.image)
    repaired = sample.model_copy(update={"annotation": annotation, "repairs": [*sample.repairs, action.describe()]})
    return _judge(deps, spec, repaired, render.image)


def _can_edit(deps: Deps) -> bool:
    """Image edits repair `edit` verdicts when the renderer edits images and the annotator labels pixels (an
    instance map read by an exact annotator would no longer describe the edited image)."""
    return can_edit_images(deps.renderer) and not deps.annotator.capabilities.needs_instance_map


def _edit_in_place(deps: Deps, spec: TaskSpec, sample: Sample, render: RenderResult,
                   action: RepairAction) -> tuple[Sample, Decision]:
    """InstructDiffusion-style repair: the renderer's editor applies the instruction (seed derived from the
    sample's), the edited image replaces the sample's, the pair is written to edits/ (source, result; listed
    by the edits exporter), the image is annotated again through the engine and judged again (once)."""
    seed = derive_seed(sample.seed, "edit")
    edited = np.asarray(deps.renderer.edit_image(render.image, action.instruction, seed))
    if edited.shape != render.image.shape or edited.dtype != np.uint8:
        raise RuntimeError(f"renderer '{deps.renderer.id}' edited a {render.image.shape} image into "
                           f"{edited.shape} {edited.dtype} (an edit keeps size and uint8 RGB)")
    level = deps.config.png_compress_level
    name = f"{EDITS_DIR}/{sample.id}-a{sample.attempt}"
    source, result = f"{name}-src.png", f"{name}-dst.png"
    atomic_write_png(deps.out_dir / source, render.image, compress_level=level)
    atomic_write_png(deps.out_dir / result, edited, compress_level=level)
    atomic_write_png(deps.out_dir / sample.image_path, edited, compress_level=level)
    relabel = dataclasses.replace(render, image=edited, instance_map=None, amodal_areas=[])
    annotation = deps.engine.annotate([AnnotateRequest(sample.layout, relabel, spec)])[0]
    if LANGUAGE_TASKS & set(spec.tasks):
        annotation = _with_language(deps, spec, sample, annotation, edited)
    editor = edit_provenance(deps.renderer)
    record = {"attempt": sample.attempt, "instruction": action.instruction, "seed": seed, "source": source,
              "result": result, "editor": editor, "causes": list(action.causes)}
    repaired = sample.model_copy(update={
        "annotation": annotation, "repairs": [*sample.repairs, action.describe()],
        "render_info": {**sample.render_info, "edits": [*sample.render_info.get("edits", []), record]},
        "image_sha256": pixel_sha256(edited), "phash": perceptual_hash(edited),
        "backend": {**sample.backend, "editor": str(editor.get("model") or editor.get("editor") or deps.renderer.id)}})
    return _judge(deps, spec, repaired, edited)


def critique(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Judge each sample in index order, then keep it, repair it, or reject it and queue a new attempt.

    Repairs (bounded): an `edit` verdict asking to drop annotations is applied in place and judged once more;
    one asking for an image change ("make the cup red") is applied by the renderer's editor when it has one
    (the edited image annotated again and judged once more; `_edit_in_place`); one asking for a re-render (or
    an image change without an editor, or an edit the critic still refuses) queues the next attempt with the
    same layout and a new seed; anything else (and every reject) queues a new layout. Attempts stop at the
    spec's per-image budget. A kept sample goes to the run's export session at once (exported in the background
    while the next batch renders); a failed step drops the session, to be rebuilt from the records.
    """
    deps = _deps(runtime)
    spec = _spec(state)
    try:
        return _critique_batch(deps, spec, state, export_session(deps, spec))
    except BaseException:
        drop_export_session(deps)
        raise


def _critique_batch(deps: Deps, spec: TaskSpec, state: RunState, session: ExportSession) -> dict[str, Any]:
    """The critique node's work (see `critique`), kept samples added to `session`."""
    samples = sorted((Sample.model_validate(s) for s in state["batch"]), key=lambda s: s.index)
    kept, rejected = state.get("kept", 0), state.get("rejected", 0)
    retries: list[Slot] = list(state.get("retry_slots", []))
    renders = _renders_for(deps, spec, samples)
    for sample in samples:
        deps.scratch.pop(sample.id, None)
    with deps.timers.phase("critique"):
        prepared = deps.engine.map(lambda pair: _prejudge(deps, spec, *pair),
                                   zip(samples, (r.image for r in renders), strict=True))
    can_edit = _can_edit(deps)
    for (sample, precomputed), render in zip(prepared, renders, strict=True):
        action: RepairAction | None = None
        with deps.timers.phase("critique"):
            sample, decision = _judge(deps, spec, sample, render.image, precomputed)
            if decision == Decision.edit:
                action = plan_repair(sample.verdicts, can_edit=can_edit)
                repaired = _repair_in_place(deps, spec, sample, render, action)
                if repaired is not None:
                    sample, decision = repaired
                    action = None if decision == Decision.accept else action
        with deps.timers.phase("store"):
            if decision == Decision.accept:
                add_kept(deps, session, sample)
                kept += 1
                deps.report("kept", id=sample.id)
                continue
            row = record_rejection(deps.work_dir, deps.out_dir, sample)
            rejected += 1
            if sample.attempt + 1 < spec.budgets.max_attempts_per_image:
                retry: Slot = {"index": sample.index, "attempt": sample.attempt + 1}
                if action is not None:
                    # An edit the critic still refused is followed by a re-render of the same layout.
                    note = "rerender" if action.kind == "edit_image" else action.describe()
                    retry["repairs"] = [*sample.repairs, f"{note} after attempt {sample.attempt}"]
                    if action.kind in ("rerender", "edit_image"):
                        retry["layout"] = sample.layout.model_dump(mode="json")
                retries.append(retry)
            deps.report("rejected", id=sample.id, reasons=row["reasons"])
    return {"batch": [], "kept": kept, "rejected": rejected, "retry_slots": retries}


def _rank(deps: Deps, spec: TaskSpec, ids: list[str]) -> dict[str, float]:
    """Rate the kept samples by a pairwise tournament (Bradley–Terry); write ratings.json; each id's rating.
    Records and images are read when a sample's matches are played (only ids and ratings stay in memory)."""
    if deps.pairwise is None:
        raise UserInputError("ranking needs a pairwise judge (internal error: none was built)")

    def load(sample_id: str) -> JudgeInput:
        sample = read_kept(deps.work_dir, sample_id)
        with Image.open(deps.out_dir / sample.image_path) as pil:
            return JudgeInput(sample=sample, image=np.asarray(pil.convert("RGB")), spec=spec)

    ratings, matches = rank_samples(ids, load, deps.pairwise,
                                    matches_per_sample=deps.config.rank_matches_per_sample, seed=spec.seed)
    atomic_write_json(deps.out_dir / "ratings.json", {
        **ratings.model_dump(mode="json"), "judge": getattr(deps.pairwise, "id", "pairwise"),
        "matches": [m.model_dump(mode="json") for m in matches],
    }, indent=1)
    return {sample_id: round(ratings.scores[sample_id], 2) for sample_id in ids}


def export(state: RunState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Rank the kept samples (when asked), then close the run's export session: the per-sample files were
    written as samples were kept; what needs the final set (COCO ids and arrays, the manifest with the ratings,
    rejected.jsonl, the card) is written now. Samples and rejected rows stream from disk (sorted there), so
    memory does not grow with the size of the run."""
    deps = _deps(runtime)
    spec = _spec(state)
    try:
        session = export_session(deps, spec)  # opened here when this process kept nothing (a resume, say)
        ratings: dict[str, float] = {}
        if deps.config.rank_matches_per_sample > 0:
            ids = list(kept_ids(deps.work_dir))
            if len(ids) > 1:
                deps.report("ranking", n=len(ids))
                with deps.timers.phase("rank"):
                    ratings = _rank(deps, spec, ids)
        deps.report("exporting")
        with deps.timers.phase("export"):
            section = deps.sampler.report(deps.out_dir, spec)  # e.g. layout statistics against the user's reference
            session.close(rejected_rows=iter_rejected(deps.work_dir), ratings=ratings,
                          extra={"stop_reason": state.get("stop_reason", "")}, sections=[section] if section else [])
    finally:
        drop_export_session(deps)
    return {"exported": True}
