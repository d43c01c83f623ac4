"""Conversational spec edits, read deterministically: "make it 300", "add trucks", "YOLO instead",
"no captions", "also masks", "512x512 please", "harder", "remove forks", "seed 5", "70/20/10".

`parse_edit(spec, message)` returns a `SpecEdit` (what the message changes) built from the same readers the
planner grounds requests with, so numbers and class names always come from the message itself.
`apply_edit(spec, edit, message)` turns it into a new, validated `TaskSpec`. The LLM fallback in
`synthloop.agent.planner.revise.revise_spec` proposes the same `SpecEdit` shape for messages the rules miss.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from synthloop.agent.planner.extract import extract
from synthloop.agent.planner.grounding import NO_CLASS_QUESTION, render_prompt_for
from synthloop.agent.planner.lexicon import FORMAT_PATTERNS, KNOWN_OBJECTS, TASK_PATTERNS, FormatName, TaskName
from synthloop.agent.planner.notices import merge_notices, not_understood_notices, unplaced_words
from synthloop.agent.planner.phrases import phrase_to_class
from synthloop.agent.planner.text import is_negated, normalise, singular
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

# How a revision's questions start (they have source "revision": the graph routes the next reply back here).
REVISION_QUESTION_PREFIX = "I could not apply"
Name = Annotated[str, Field(max_length=48)]


class SpecEdit(BaseModel):
    """One conversational change; empty fields change nothing. Also the LLM's schema (bounded lists)."""

    n_images: int | None = None
    add_classes: list[Name] = Field(default_factory=list, max_length=8)
    remove_classes: list[Name] = Field(default_factory=list, max_length=8)
    add_tasks: list[TaskName] = Field(default_factory=list, max_length=len(Task))
    remove_tasks: list[TaskName] = Field(default_factory=list, max_length=len(Task))
    set_tasks: list[TaskName] = Field(default_factory=list, max_length=len(Task))
    add_formats: list[FormatName] = Field(default_factory=list, max_length=len(ExportFormat))
    remove_formats: list[FormatName] = Field(default_factory=list, max_length=len(ExportFormat))
    set_formats: list[FormatName] = Field(default_factory=list, max_length=len(ExportFormat))
    width: int | None = None
    height: int | None = None
    difficulty: Literal["easy", "medium", "hard", "harder", "easier"] | None = None
    seed: int | None = None
    scene: str = Field(default="", max_length=80)
    style: str = Field(default="", max_length=80)


class ParsedEdit(BaseModel):
    """A `SpecEdit` plus what only the deterministic reader fills (per-class counts and attributes, splits)."""

    edit: SpecEdit = Field(default_factory=SpecEdit)
    counts: dict[str, tuple[int, int]] = Field(default_factory=dict)
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    splits: tuple[float, float, float] | None = None

    def is_empty(self) -> bool:
        """True when nothing in the message was understood as a change."""
        return self.edit == SpecEdit() and not self.counts and not self.attributes and self.splits is None


_REMOVE = r"(?:remove|drop|delete|without|no|exclude|excluding|get rid of|skip|lose|minus|not|don'?t (?:want|need))"
_ADD = r"(?:add|also|plus|include|including|with|and|too|as well|extra|want|need|put|throw in|some)"
_REPLACE = r"(?:instead|only|just|switch|change|use|rather|export (?:as|to|in)|in \w+ format|format)"
_ADD_CUE = re.compile(rf"\b{_ADD}\b")
_ADD_VERBS = r"(?:add|include|also want|also need|want|need|throw in|put in|plus|also)"
_HARDER = re.compile(r"\b(?:harder|more difficult|more challenging|tougher|more occlu\w*|more clutter\w*)\b")
_EASIER = re.compile(r"\b(?:easier|simpler|less difficult|less clutter\w*|less occlu\w*)\b")
_REPLACE_CLASS = re.compile(r"\breplace (?:the )?([a-z][a-z \-]*?) (?:with|by) ([a-z][a-z \-]*?)\s*(?:[.,;!]|$)")


def _mentions(text: str, pattern: str) -> list[re.Match[str]]:
    return list(re.finditer(rf"(?<![\w-])(?:{pattern})(?!\w)", text))


def _without_semantic(text: str) -> str:
    """'semantic masks' → 'semantic-segmentation', so it does not also read as instance masks."""
    return re.sub(r"semantic[ -]?(?:segmentation|masks?|labels?|maps?)", "semantic-segmentation", text)


def _kind(text: str, start: int, end: int) -> str:
    """'remove', 'set' or 'add' for a mention at [start, end): the nearest cue word before it in its clause
    wins ("drop the plates and add bowls"); "X instead" / "only X" replace; "instead of X" removes."""
    clause_start = max(text.rfind(c, 0, start) for c in ".;!?") + 1
    before = text[clause_start:start]
    if re.search(r"\binstead of\s+(?:the\s+)?$", before):
        return "remove"
    best, kind = -1, "bare"
    for name, pattern in (("remove", _REMOVE), ("add", _ADD), ("set", _REPLACE)):
        for m in re.finditer(rf"\b{pattern}\b", before):
            if m.start() >= best:
                best, kind = m.start(), name
    after = text[end : end + 25]
    if kind != "remove" and re.match(rf"\W*(?:{_REPLACE})\b", after):
        return "set"
    return kind


def _removed(text: str, start: int) -> bool:
    return _kind(text, start, start) == "remove"


def _keyword_edits(text: str, patterns: dict, *, bare: str) -> tuple[list[str], list[str], list[str]]:
    """(add, remove, set) for task or format keywords mentioned in the message; a mention with no cue word
    counts as `bare` ("add" for tasks: "masks please"; "set" for formats: "yolo please")."""
    found: dict[str, list[str]] = {"add": [], "remove": [], "set": []}
    for key, pattern in patterns.items():
        for m in _mentions(text, pattern):
            kind = _kind(text, m.start(), m.end())
            found[bare if kind == "bare" else kind].append(str(key))
            break
    return found["add"], found["remove"], found["set"]


def parse_edit(spec: TaskSpec, message: str) -> ParsedEdit:
    """Read the changes a message asks for. Classes and numbers come only from the message text."""
    text = normalise(message)
    # "add saucers", "I also want knives": the add verbs introduce a list of classes, like "with" does.
    ex = extract(re.sub(rf"\b{_ADD_VERBS}\b", " with ", text))
    edit = SpecEdit()
    parsed = ParsedEdit(edit=edit)
    existing = set(spec.class_names)

    # Numbers: "make it 300", "300 images", "only 50" → the image count.
    if ex.n_images is not None:
        edit.n_images = ex.n_images
    elif (
        len(ex.n_images_candidates) == 1
        and re.search(r"\b(?:make|set|change|only|just|want|need|it|total)\b", text)
        and not any(c.count for c in ex.classes)
    ):
        edit.n_images = ex.n_images_candidates[0]
    if ex.size is not None:
        edit.width, edit.height = ex.size
    if ex.seed is not None:
        edit.seed = ex.seed
    if ex.splits is not None:
        parsed.splits = (ex.splits.train, ex.splits.val, ex.splits.test)
    if _HARDER.search(text):
        edit.difficulty = "harder"
    elif _EASIER.search(text):
        edit.difficulty = "easier"
    elif ex.difficulty is not None:
        edit.difficulty = ex.difficulty.value

    # Tasks and formats, with their verbs: "no captions", "also masks", "YOLO instead".
    edit.add_tasks, edit.remove_tasks, edit.set_tasks = _keyword_edits(  # type: ignore[assignment]
        _without_semantic(text), TASK_PATTERNS, bare="add"
    )
    edit.add_formats, edit.remove_formats, edit.set_formats = _keyword_edits(  # type: ignore[assignment]
        text, FORMAT_PATTERNS, bare="set"
    )
    if "instead of" in text:  # "masks instead of boxes": swap one, keep the rest
        edit.add_tasks, edit.set_tasks = [*edit.add_tasks, *edit.set_tasks], []
        edit.add_formats, edit.set_formats = [*edit.add_formats, *edit.set_formats], []

    # Classes: "replace cups with mugs", "remove forks", "add trucks", "3-5 cups per image".
    if m := _REPLACE_CLASS.search(text):
        old, new = singular(m.group(1).split()[-1]), m.group(2)
        if old in existing:
            edit.remove_classes.append(old)
            new_ex = extract(f"images of {new}")
            edit.add_classes += [c.name for c in new_ex.classes]
    for cand in ex.classes:
        occurrence = _occurrence(text, cand.name)
        if cand.name in existing:
            if occurrence is not None and _removed(text, occurrence):
                edit.remove_classes.append(cand.name)
            else:
                if cand.count:
                    parsed.counts[cand.name] = cand.count
                if cand.attributes:
                    parsed.attributes[cand.name] = cand.attributes
        elif occurrence is not None and _removed(text, occurrence):
            continue  # removing a class the spec does not have: nothing to do
        elif cand.name not in edit.add_classes and (_ADD_CUE.search(text) or cand.name in KNOWN_OBJECTS):
            edit.add_classes.append(cand.name)
            if cand.count:
                parsed.counts[cand.name] = cand.count
            if cand.attributes:
                parsed.attributes[cand.name] = cand.attributes
    for name in existing:  # "remove forks" where "forks" alone may not read as a class phrase
        occurrence = _occurrence(text, name)
        if occurrence is not None and _removed(text, occurrence) and name not in edit.remove_classes:
            edit.remove_classes.append(name)
    if ex.scene and not (ex.classes and ex.scene in " ".join(c.name for c in ex.classes)):
        edit.scene = ex.scene[:80]
    if ex.style:
        edit.style = ex.style[:80]
    return parsed


def _occurrence(text: str, name: str) -> int | None:
    """Character offset of a class name (singular or plural) in the message, or None."""
    words = name.split()
    head = re.escape(words[-1])
    pattern = r"\s+".join([*map(re.escape, words[:-1]), rf"{head}(?:s|es)?"]) if words else head
    m = re.search(rf"\b{pattern}\b", text)
    if m is None and singular(words[-1]) != words[-1]:
        return None
    if m is None:  # irregular plurals: compare singularised tokens
        for t in re.finditer(r"[a-z]+", text):
            if singular(t.group(0)) == words[-1]:
                return t.start()
        return None
    return m.start()


def _revision_question(text: str) -> Question:
    return Question(source="revision", text=text)


def _level(current: Difficulty, change: str) -> Difficulty:
    order = [Difficulty.easy, Difficulty.medium, Difficulty.hard]
    if change == "harder":
        return order[min(order.index(current) + 1, 2)]
    if change == "easier":
        return order[max(order.index(current) - 1, 0)]
    return Difficulty(change)


def _ordered(values: list, enum: type) -> list:
    return [member for member in enum if member in values]


def apply_edit(spec: TaskSpec, parsed: ParsedEdit, message: str) -> TaskSpec:
    """A new spec with the edit applied; out-of-range values become questions instead of errors."""
    edit = parsed.edit
    questions = [q for q in spec.questions if q.source != "revision"]
    defaults = list(spec.defaults_used)
    update: dict = {}

    def drop_default(*prefixes: str) -> None:
        nonlocal defaults
        defaults = [d for d in defaults if not d.startswith(prefixes)]

    if edit.n_images is not None:
        if 1 <= edit.n_images <= MAX_IMAGES:
            update["n_images"] = edit.n_images
            drop_default("n_images")
            questions = [q for q in questions if "images" not in q.text or q.text == NO_CLASS_QUESTION]
        else:
            questions.append(_revision_question(
                f"{REVISION_QUESTION_PREFIX} {edit.n_images:,} images: between 1 and {MAX_IMAGES:,} "
                "are supported. How many images should be generated?"
            ))
    if edit.width is not None and edit.height is not None:
        if all(MIN_SIDE <= side <= MAX_SIDE for side in (edit.width, edit.height)):
            update.update(width=edit.width, height=edit.height)
            drop_default("width", "height")
            questions = [q for q in questions if not q.text.startswith("Image size")]
        else:
            questions.append(_revision_question(
                f"{REVISION_QUESTION_PREFIX} the size {edit.width}x{edit.height}: each side must be "
                f"{MIN_SIDE}-{MAX_SIDE} px. Which size should be used?"
            ))
    if edit.seed is not None and 0 <= edit.seed < 2**32:
        update["seed"] = edit.seed
    if edit.difficulty is not None:
        update["difficulty"] = _level(spec.difficulty, edit.difficulty)
    if parsed.splits is not None:
        update["splits"] = Splits(train=parsed.splits[0], val=parsed.splits[1], test=parsed.splits[2])

    tasks = list(spec.tasks)
    if edit.set_tasks:
        tasks = [Task(t) for t in edit.set_tasks]
    tasks += [Task(t) for t in edit.add_tasks if Task(t) not in tasks]
    tasks = [t for t in tasks if t.value not in edit.remove_tasks]
    if tasks != list(spec.tasks):
        update["tasks"] = _ordered(tasks, Task) or [Task.detection]
        drop_default("tasks")
    formats = list(spec.formats)
    if edit.set_formats:
        formats = [ExportFormat(f) for f in edit.set_formats]
    formats += [ExportFormat(f) for f in edit.add_formats if ExportFormat(f) not in formats]
    formats = [f for f in formats if f.value not in edit.remove_formats]
    if formats != list(spec.formats):
        update["formats"] = _ordered(formats, ExportFormat) or [ExportFormat.coco]
        drop_default("formats")

    scene = edit.scene or spec.scene
    style = ", ".join(dict.fromkeys(p for p in (spec.style, edit.style) if p))[:300]
    if edit.scene:
        update["scene"] = scene
    if edit.style:
        update["style"] = style
    objects = _edit_objects(spec, parsed, scene, style)
    if [o.name for o in objects] != spec.class_names or objects != list(spec.objects):
        update["objects"] = objects
        if any(o.name != "object" for o in objects):
            questions = [q for q in questions if q.text != NO_CLASS_QUESTION]
            drop_default("objects")
    if "objects" in update and sum(o.max_count for o in update["objects"]) > MAX_OBJECTS_PER_IMAGE:
        update.pop("objects")
        questions.append(_revision_question(
            f"{REVISION_QUESTION_PREFIX} those per-image counts: they add up to more than "
            f"{MAX_OBJECTS_PER_IMAGE} objects. How many of each should an image hold?"
        ))
    request = f"{spec.request}\n{message.strip()}".strip()[-4000:]
    revised = TaskSpec.model_validate(
        {**spec.model_dump(), **update, "request": request, "questions": questions[:10], "defaults_used": defaults[:30]}
    )
    return revised.model_copy(update={"notices": _edit_notices(spec, revised, parsed, message)})


def settled_notices(spec: TaskSpec, message: str) -> list[Notice]:
    """The spec's notices a message settles: a `not_understood` one whose words the spec now carries ("add
    trash bins"), a `cannot_deliver` one the message takes back ("no keypoints then", "drop the depth maps")."""
    text = normalise(message)
    placed = {w for o in spec.objects for w in [*o.name.split(), *" ".join(o.attributes).split()]}
    placed |= set(f"{spec.scene} {spec.style}".replace(",", " ").split())
    settled = []
    for notice in spec.notices:
        if notice.kind == "not_understood":
            done = all(w in placed or singular(w) in placed for w in notice.text.split())
        else:
            at = text.find(notice.text)
            done = at >= 0 and (is_negated(text, at) or _removed(text, at))
        if done:
            settled.append(notice)
    return settled


def _edit_notices(spec: TaskSpec, revised: TaskSpec, parsed: ParsedEdit, message: str) -> list[Notice]:
    """The notices the edit did not settle, plus what the message asks for that the revised spec does not carry
    (its words no reader placed, what cannot be delivered)."""
    ex = extract(message)
    words = unplaced_words(ex.prepared, revised, also_placed=[*parsed.edit.remove_classes, *spec.class_names])
    settled = settled_notices(revised, message)
    return merge_notices([n for n in revised.notices if n not in settled], ex.notices, not_understood_notices(words))


def _edit_objects(spec: TaskSpec, parsed: ParsedEdit, scene: str, style: str) -> list[ObjectSpec]:
    edit = parsed.edit
    objects = [o for o in spec.objects if o.name not in edit.remove_classes]
    if edit.add_classes:
        objects = [o for o in objects if o.name != "object"]  # the placeholder of a spec with no class
    names = {o.name for o in objects}
    for name in edit.add_classes:
        if name not in names and len(objects) < 50:
            lo, hi = parsed.counts.get(name, (1, 3))
            attrs = parsed.attributes.get(name, [])[:8]
            objects.append(
                ObjectSpec(
                    name=name,
                    attributes=attrs,
                    min_count=lo,
                    max_count=hi,
                    prompt=render_prompt_for(name, attrs, scene, style),
                )
            )
            names.add(name)
    revised = []
    for obj in objects:
        lo, hi = parsed.counts.get(obj.name, (obj.min_count, obj.max_count))
        attrs = list(dict.fromkeys([*obj.attributes, *parsed.attributes.get(obj.name, [])]))[:8]
        changed = (lo, hi, attrs) != (obj.min_count, obj.max_count, obj.attributes) or scene != spec.scene
        prompt = render_prompt_for(obj.name, attrs, scene, style) if changed or style != spec.style else obj.prompt
        revised.append(obj.model_copy(update={"min_count": lo, "max_count": hi, "attributes": attrs, "prompt": prompt}))
    if not revised:  # every class removed: keep the spec runnable and ask
        return list(spec.objects)
    return revised


def not_understood(spec: TaskSpec, message: str, understood: str = "") -> TaskSpec:
    """The spec unchanged, with a question saying what was (not) understood."""
    heard = f" I understood: {understood}." if understood else ""
    question = (
        f"{REVISION_QUESTION_PREFIX} '{message.strip()[:80]}' to the spec.{heard} Say for example "
        "'make it 300', 'add trucks', 'remove forks', 'YOLO instead', 'no captions', '512x512' or 'harder'."
    )
    questions = [q for q in spec.questions if q.source != "revision"]
    return spec.model_copy(update={"questions": [*questions, _revision_question(question)][:10]})


def ground_edit(spec: TaskSpec, proposal: SpecEdit, message: str) -> SpecEdit:
    """Keep only what the message backs: numbers written in it, added classes that are spans of it, removed
    classes the spec has, keywords it names. The LLM's edit is never trusted on its own."""
    ex = extract(message)
    text = normalise(message)
    numbers = {*ex.n_images_candidates, *([ex.n_images] if ex.n_images else []), *(ex.size or ())}
    numbers |= set(map(int, re.findall(r"\d+", text.replace(",", ""))))
    tokens = {singular(t) for t in re.findall(r"[a-z]+", text)}
    mentioned = {c.name for c in ex.classes} | {
        name
        for name in (singular(n.strip().lower()) for n in proposal.add_classes)
        if name and all(w in tokens for w in name.split()) and phrase_to_class(name.split()) is not None
    }
    named_tasks = {str(k) for k, p in TASK_PATTERNS.items() if _mentions(text, p)}
    named_formats = {str(k) for k, p in FORMAT_PATTERNS.items() if _mentions(text, p)}
    kept = SpecEdit(
        n_images=proposal.n_images if proposal.n_images in numbers else None,
        add_classes=[c for c in (singular(n.strip().lower()) for n in proposal.add_classes) if c in mentioned],
        remove_classes=[
            c
            for c in spec.class_names
            if c in {singular(n.strip().lower()) for n in proposal.remove_classes} and c.split()[-1] in tokens
        ],
        add_tasks=[t for t in proposal.add_tasks if t in named_tasks],
        remove_tasks=[t for t in proposal.remove_tasks if t in named_tasks],
        set_tasks=[t for t in proposal.set_tasks if t in named_tasks],
        add_formats=[f for f in proposal.add_formats if f in named_formats],
        remove_formats=[f for f in proposal.remove_formats if f in named_formats],
        set_formats=[f for f in proposal.set_formats if f in named_formats],
        seed=proposal.seed if proposal.seed in numbers else None,
    )
    if proposal.width in numbers and proposal.height in numbers:
        kept.width, kept.height = proposal.width, proposal.height
    if proposal.difficulty in ("easy", "medium", "hard") and proposal.difficulty in text:
        kept.difficulty = proposal.difficulty
    return kept


def merge_edits(rules: ParsedEdit, llm: SpecEdit) -> ParsedEdit:
    """The rules' edit, with the (grounded) LLM edit filling only the fields the rules left empty."""
    merged = rules.edit.model_copy()
    for name in SpecEdit.model_fields:
        if getattr(merged, name) in (None, "", []) and getattr(llm, name) not in (None, "", []):
            setattr(merged, name, getattr(llm, name))
    return rules.model_copy(update={"edit": merged})
