"""Deterministic grounding: turn a request (and an optional LLM proposal) into a `TaskSpec` that only says
what the request says.

The LLM behind the planner may be tiny (SmolLM2-135M reads "20" for "200" and takes colours for classes), so
nothing it proposes is trusted on its own:

- classes must be spans of the request (singularised, lower-case); colour and other attribute words become
  `attributes`, never classes; scene words ("kitchen scenes", "on a table") become the scene;
- numbers must occur in the request (digits, "1,000", "1.5k", "two hundred", "a dozen"); a number next to an
  image noun ("300 scenes") is the image count, one in front of a class ("2-5 cups") a per-image count;
- sizes come from "640x480", "512 by 512", "256px"; tasks, formats and difficulty from keywords (with simple
  negation: "no masks"); a few weaker cue words count only when the LLM proposed that value too.

Everything found deterministically is used even when the LLM missed it. A required field that is not grounded
gets its default and an entry in `spec.defaults_used` ("n_images=100 (not stated)"); a request with no
groundable object class gets `objects=[object]` and a question in `spec.questions`, and callers refuse to
run such a spec. Nothing here raises on odd input: empty text, binary junk, huge numbers and prompt injection
all give a valid spec (no path or instruction is ever taken from the request).
"""

from __future__ import annotations

from collections.abc import Sequence

from synthloop.agent.planner.extract import Extraction, extract
from synthloop.agent.planner.notices import merge_notices, not_understood_notices, unplaced_words
from synthloop.agent.planner.schemas import MAX_CLASSES, PlanProposal
from synthloop.agent.planner.text import TOKEN, clean_request, normalise
from synthloop.tools.types import (
    MAX_IMAGES,
    MAX_OBJECTS_PER_IMAGE,
    MAX_SIDE,
    MIN_SIDE,
    Difficulty,
    ExportFormat,
    Notice,
    ObjectSpec,
    Question,
    Splits,
    Task,
    TaskSpec,
)

DEFAULT_N_IMAGES = 100
DEFAULT_SIZE = 512
NO_CLASS_QUESTION = "Which objects should the images contain?"
CROWDED_CLASSES = 5  # from this many classes on, the default count is 0-N: an image shows some of them, not all


def default_count(n_classes: int) -> tuple[int, int]:
    """Per-image count of a class the request gives no count for: 1-3 for up to four classes; 0-2 for five or six,
    0-1 for more, so that an image shows a subset of the classes, about 5-8 objects at medium difficulty (10
    classes at 1-3 each put ~19 objects in every 512² image, which halved YOLOv3-tiny's recall on copy_paste
    renders, and real photographs rarely hold every class at once)."""
    if n_classes < CROWDED_CLASSES:
        return 1, 3
    return (0, 2) if n_classes <= 6 else (0, 1)


def _grounded_text(value: str, words: set[str], exclude: set[str]) -> str:
    """An LLM free-text value kept only if every content word occurs in the request."""
    content = [w for w in TOKEN.findall(normalise(value)) if w[0].isalnum() and w not in ("a", "an", "the")]
    if content and all(w in words for w in content) and not set(content) <= exclude:
        return value.strip()[:300]
    return ""


def render_prompt_for(name: str, attributes: list[str], scene: str = "", style: str = "") -> str:
    """A richer per-class render prompt: 'a red car, on a highway, night' (only words from the request)."""
    article = "an" if name[:1] in "aeiou" else "a"
    words = [*attributes, name]
    phrase = f"{'an' if words[0][:1] in 'aeiou' else 'a'} {' '.join(words)}" if attributes else f"{article} {name}"
    parts = [phrase, scene.split(",")[0].strip(), style]
    return ", ".join(p for p in parts if p)[:300]


def ground_spec(
    request: str,
    proposal: PlanProposal | None = None,
    *,
    n_images: int | None = None,
    seed: int | None = None,
) -> TaskSpec:
    """Build a `TaskSpec` from the request text, using `proposal` only where the request backs it.

    `n_images` and `seed` are explicit caller choices (e.g. `--n`, `--seed`) and win over the request.
    Defaults: n_images=100, 512x512, tasks=[detection], formats=[coco], difficulty=medium, splits 80/20/0,
    seed=0; each of the first four, when not grounded, is listed in `defaults_used`. Every object gets a
    render prompt built from its attributes, the scene and the style (`render_prompt_for`).
    """
    if n_images is not None and not 1 <= n_images <= MAX_IMAGES:
        raise ValueError(f"n_images must be between 1 and {MAX_IMAGES:,}, got {n_images}")
    if seed is not None and not 0 <= seed < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32-1, got {seed}")
    text = clean_request(request)
    ex = extract(text, proposal)
    questions = list(ex.questions)
    defaults: list[str] = []

    classes, left_out = ex.classes[:MAX_CLASSES], [c.name for c in ex.classes[MAX_CLASSES:]]
    if left_out:
        questions.append(f"The request names {len(ex.classes)} object classes; only the first {MAX_CLASSES} were kept.")
    objects = []
    usual = default_count(len(classes))
    uncounted = [c.name for c in classes if not c.count]
    if usual != (1, 3) and uncounted:
        defaults.append(f"object counts={usual[0]}-{usual[1]} per image for {', '.join(uncounted[:6])}"
                        f"{' …' if len(uncounted) > 6 else ''} ({len(classes)} classes: every one of them in "
                        "every image would crowd it; give counts to change)")
    for cand in classes:
        lo, hi = cand.count if cand.count else usual
        attributes = [a[:40] for a in cand.attributes[:8]]
        objects.append(ObjectSpec(name=cand.name, attributes=attributes, min_count=lo, max_count=hi,
                                  prompt=render_prompt_for(cand.name, attributes, ex.scene, ex.style)))
    if sum(o.max_count for o in objects) > MAX_OBJECTS_PER_IMAGE or (objects and not any(o.max_count for o in objects)):
        questions.append(
            f"The per-image counts asked for add up to more than {MAX_OBJECTS_PER_IMAGE} objects (or none); "
            "how many of each object should an image hold?"
        )
        objects = [o.model_copy(update={"min_count": 1, "max_count": 3}) for o in objects]
        defaults.append("object counts=1-3 per image (counts asked for were impossible)")
    if not objects:
        objects = [ObjectSpec(name="object")]
        questions.append(NO_CLASS_QUESTION)
        defaults.append("objects=object (no object class found in the request)")

    count = n_images
    if count is None:
        count = ex.n_images
        if count is None and proposal is not None and proposal.n_images in ex.n_images_candidates:
            count = proposal.n_images
        if count is not None and not 1 <= count <= MAX_IMAGES:
            questions.append(
                f"The request asks for {count:,} images; between 1 and {MAX_IMAGES:,} are supported. "
                "How many images should be generated?"
            )
            defaults.append(f"n_images={DEFAULT_N_IMAGES} ({count:,} is out of range)")
            count = DEFAULT_N_IMAGES
        elif count is None:
            count = DEFAULT_N_IMAGES
            defaults.append(f"n_images={DEFAULT_N_IMAGES} (not stated)")

    width = height = DEFAULT_SIZE
    if ex.size is None:
        defaults += [f"width={DEFAULT_SIZE} (not stated)", f"height={DEFAULT_SIZE} (not stated)"]
    elif all(MIN_SIDE <= side <= MAX_SIDE for side in ex.size):
        width, height = ex.size
    else:
        questions.append(
            f"Image size {ex.size[0]}x{ex.size[1]} is outside {MIN_SIDE}-{MAX_SIDE} px per side. "
            "Which size should be used?"
        )
        defaults += [
            f"width={DEFAULT_SIZE} (size out of range)",
            f"height={DEFAULT_SIZE} (size out of range)",
        ]

    llm_tasks = {Task(t) for t in proposal.tasks} if proposal else set()
    tasks = [t for t in Task if t in ex.tasks or (t in ex.weak_tasks and t in llm_tasks)]
    if not tasks:
        tasks = [Task.detection]
        defaults.append("tasks=detection (not stated)")
    formats = [f for f in ExportFormat if f in ex.formats]
    if not formats:
        formats = [ExportFormat.coco]
        defaults.append("formats=coco (not stated)")

    class_words = {w for o in objects for w in o.name.split()}
    scene = ex.scene or (_grounded_text(proposal.scene, ex.words, class_words) if proposal else "")
    style = ex.style or (_grounded_text(proposal.style, ex.words, class_words) if proposal else "")
    splits = Splits(train=ex.splits.train, val=ex.splits.val, test=ex.splits.test) if ex.splits else Splits()
    if seed is None:
        seed = ex.seed
    spec = TaskSpec(
        objects=objects,
        splits=splits,
        n_images=count,
        width=width,
        height=height,
        tasks=tasks,
        formats=formats,
        scene=scene,
        style=style,
        difficulty=ex.difficulty or Difficulty.medium,
        seed=seed if seed is not None else 0,
        request=text,
        questions=[Question(source="planner", text=q) for q in questions[:10]],
        defaults_used=defaults[:30],
    )
    return with_notices(spec, ex, left_out)


def with_notices(spec: TaskSpec, ex: Extraction, left_out: Sequence[str] = ()) -> TaskSpec:
    """`spec` with everything the request asked for that it does not carry named back: what cannot be delivered,
    classes beyond the limit, and the words no reader placed."""
    too_many = [Notice(kind="cannot_deliver", text=", ".join(left_out)[:200], about="class",
                       reason=f"at most {MAX_CLASSES} object classes per dataset")] if left_out else []
    unplaced = not_understood_notices(unplaced_words(ex.prepared, spec, also_placed=[*left_out, *ex.headers]))
    return spec.model_copy(update={"notices": merge_notices(ex.notices, too_many, unplaced)})
