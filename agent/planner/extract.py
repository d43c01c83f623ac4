"""`extract`: everything the rules read from one request (classes, numbers, size, tasks, formats, difficulty,
scene, style, splits, seed), before any default is applied. `ground_spec` turns it into a `TaskSpec`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from synthloop.agent.planner.fields import (
    ALIASES,
    SplitsFound,
    blank,
    extract_seed,
    extract_splits,
    fix_typos,
    mark_object_nouns,
    restore_alias,
)
from synthloop.agent.planner.lexicon import (
    CLASS_COUNT_NOUNS,
    CORRECTIONS,
    DIFFICULTY_PATTERNS,
    FILLER,
    FORMAT_PATTERNS,
    GENERIC_PLACES,
    IMAGE_NOUNS,
    ING_NOUNS,
    INTRODUCERS,
    KNOWN_OBJECTS,
    LOCATIVE,
    SCENE_NOUNS,
    SEPARATORS,
    STANDALONE_SCENES,
    STOPS,
    STYLE_PATTERN,
    STYLE_WORDS,
    SURFACES,
    TASK_PATTERNS,
    TASK_WORDS,
    VOCABULARY,
    WEAK_TASK_PATTERNS,
)
from synthloop.agent.planner.notices import take_unsupported
from synthloop.agent.planner.numbers import Number, is_int, parse_number
from synthloop.agent.planner.phrases import (
    Candidate,
    bare_list_candidates,
    ground_llm_classes,
    image_noun_modifiers,
    in_spans,
    known_candidates,
    list_candidates,
    locative_spans,
    merge_candidates,
    plural_place_objects,
    purpose_spans,
    read_list,
)
from synthloop.agent.planner.schemas import PlanProposal
from synthloop.agent.planner.text import TOKEN, find, is_punct, normalise, singular
from synthloop.tools.types import MAX_OBJECTS_PER_IMAGE, Difficulty, ExportFormat, Notice, Task

# Signs are read, so "-256x-256" is an impossible size (a question), not a size ignored for the default.
SIZE_PAIR = re.compile(r"(?<![\w-])(-?\d{2,9})\s*(?:x|\*|by)\s*(-?\d{2,9})(?:\s*(?:px|pixels?))?\b")
SIZE_SINGLE = re.compile(r"(?<![\w-])(-?\d{1,9})\s*(?:px|pixels?)\b")
POWER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s*(?:\^|\*\*)\s*[-+]?\d+|(?<![\w.])\d+(?:\.\d+)?e[-+]?\d+\b")


@dataclass
class Extraction:
    """Everything read deterministically from one request (before defaults)."""

    classes: list[Candidate]
    n_images: int | None
    n_images_candidates: list[int]
    size: tuple[int, int] | None
    tasks: list[Task]
    weak_tasks: list[Task]
    formats: list[ExportFormat]
    difficulty: Difficulty | None
    scene: str
    style: str
    words: set[str]
    questions: list[str]
    splits: SplitsFound | None = None
    seed: int | None = None
    unexplained: list[str] = field(default_factory=list)
    prepared: str = ""  # the text the readers saw: normalised, typos fixed; sizes, splits, seed and unsupported
    # mentions blanked (what `notices.unplaced_words` accounts for)
    notices: list[Notice] = field(default_factory=list)  # cannot_deliver: what was asked that cannot be made
    headers: list[str] = field(default_factory=list)  # group names before a list ('farm animals: …')

    def uncertain(self) -> list[str]:
        """Why the rules alone may have missed something (empty: the LLM has nothing to add)."""
        reasons = []
        if not self.classes:
            reasons.append("no object class found")
        if self.unexplained:
            reasons.append(f"words not understood: {', '.join(self.unexplained[:5])}")
        if self.n_images is None and self.n_images_candidates:
            reasons.append("a number that is not clearly the image count")
        return reasons


def _prepare(request: str) -> tuple[str, SplitsFound | None, int | None, list[Notice]]:
    """Normalised text with typos fixed, mentions of what cannot be delivered taken out (as notices), splits
    and seed read and blanked, object uses of box/mask marked."""
    text, notices = take_unsupported(fix_typos(normalise(request), VOCABULARY, KNOWN_OBJECTS))
    seed = None
    if found_seed := extract_seed(text):
        seed, text = found_seed[0], blank(text, found_seed[1])
    splits = extract_splits(text)
    if splits is not None:
        text = blank(text, splits.span)
    return mark_object_nouns(text, TASK_WORDS, STOPS), splits, seed, notices


def _image_numbers(tokens: list[str], numbers: list[Number]) -> None:
    """Mark numbers that count images: '300 scenes', '200 of them', '..., 300' at the end, 'make it 300'."""
    for num in numbers:
        after = tokens[num.end : num.end + 2]
        before = " ".join(tokens[max(0, num.start - 3) : num.start])
        if after[:2] == ["of", "them"] or (after[:1] in (["total"], ["in"]) and after[1:2] == ["total"]):
            num.role = "images"
        elif any(before.endswith(cue) for cue in CORRECTIONS):
            num.role, num.correction = "images", True
        for j in range(num.end, min(num.end + 4, len(tokens))):
            if tokens[j] in IMAGE_NOUNS:
                num.role = "images"
                break
            if is_punct(tokens[j]) or tokens[j] in STOPS or tokens[j] in INTRODUCERS:
                break


def _standalone(tokens: list[str], num: Number) -> bool:
    """A number with nothing attached: '…, 300' or '300.' between punctuation or at the ends."""
    before = tokens[num.start - 1] if num.start > 0 else ","
    after = tokens[num.end] if num.end < len(tokens) else ","
    return is_punct(before) and is_punct(after) and before not in ("-", "/") and after not in ("-", "/", "x")


def extract(request: str, proposal: PlanProposal | None = None) -> Extraction:
    """Read classes, numbers, size, tasks, formats, difficulty, scene, style, splits and seed from the request.

    LLM-proposed classes are added when they are spans of the request and name an object; everything else
    here is deterministic.
    """
    text, splits, seed, notices = _prepare(request)
    questions: list[str] = []
    if powers := [m.group(0) for m in POWER.finditer(text)]:  # "10^12 images" is never read as "12 images"
        questions.append(f"The request writes {powers[0]!r} as a power; how many exactly, in digits?")
        text = POWER.sub(" , ", text)

    size = None
    for m in SIZE_PAIR.finditer(text):
        size = (int(m.group(1)), int(m.group(2)))
        break
    if size is None and (m := SIZE_SINGLE.search(text)):
        size = (int(m.group(1)), int(m.group(1)))
    text_wo_size = SIZE_SINGLE.sub(" , ", SIZE_PAIR.sub(" , ", text))
    text_wo_size = re.sub(r"hugging\s+face", "huggingface", text_wo_size)  # not the object "face"
    tokens = TOKEN.findall(text_wo_size)

    numbers: list[Number] = []
    i = 0
    while i < len(tokens):
        parsed = parse_number(tokens, i)
        if parsed is None:
            i += 1
            continue
        numbers.append(Number(parsed[0], i, parsed[1]))
        i = parsed[1]
    _image_numbers(tokens, numbers)
    for num in numbers:  # "12 classes", "5 kinds of fruit": a number of classes, not of images
        if num.end < len(tokens) and tokens[num.end] in CLASS_COUNT_NOUNS:
            num.role = "classes"
    scene_parts, class_from_modifier, scene_positions = image_noun_modifiers(tokens)

    tasks = _keywords(TASK_PATTERNS, text, strip_semantic=True)
    stuff_ok = Task.semantic_segmentation in tasks  # "roads, sky and cars" are all classes then
    place_spans = locative_spans(tokens)
    candidates = list_candidates(tokens, stuff_ok=stuff_ok) + plural_place_objects(tokens, place_spans, stuff_ok)
    candidates += bare_list_candidates(tokens, stuff_ok=stuff_ok)
    excluded = place_spans + purpose_spans(tokens)
    candidates += known_candidates(tokens, excluded) + class_from_modifier
    candidates = [  # places belong to the scene
        c for c in candidates if not in_spans(c.position, excluded) and c.position not in scene_positions
    ]
    if proposal is not None:
        candidates += ground_llm_classes(tokens, proposal.classes, excluded)
    candidates, headers = _without_list_headers(tokens, candidates)

    # Per-object counts above the per-image limit are not per-object counts ("a dataset of 200 cars").
    for cand in candidates:
        if cand.count and cand.count[1] > MAX_OBJECTS_PER_IMAGE:
            cand.count = None
        cand.name = restore_alias(cand.name)
    classes = merge_candidates(candidates)
    counted = {c.position for c in classes if c.count}
    for num in numbers:
        if num.role != "images" and any(num.end <= p <= num.end + 3 for p in counted):
            num.role = "count"

    image_numbers = [n for n in numbers if n.role == "images" and is_int(n.value)]
    free_numbers = [int(n.value) for n in numbers if n.role == "" and is_int(n.value)]
    n_images = None
    if image_numbers:
        corrected = [n for n in image_numbers if n.correction]
        values = list(dict.fromkeys(int(n.value) for n in image_numbers))
        if corrected:
            n_images = int(corrected[-1].value)
        elif len(values) > 1:
            shown = " and ".join(f"{v:,}" for v in values[:3])
            questions.append(f"The request gives more than one image count ({shown}); how many images in total?")
            n_images = values[0]
        else:
            n_images = values[0]
    if n_images is None:
        # A lone number after "generate/make/dataset of", or standing alone, is the image count.
        free = [n for n in numbers if n.role == "" and is_int(n.value)]
        cue = [n for n in free if _has_count_cue(tokens, n.start) or _standalone(tokens, n)]
        if len(cue) == 1:
            n_images = int(cue[0].value)

    weak_tasks = _keywords(WEAK_TASK_PATTERNS, text)
    formats = _keywords(FORMAT_PATTERNS, text)

    scene_parts += [" ".join(tokens[a:b]) for a, b in place_spans]
    scene_parts += [w for w in STANDALONE_SCENES if w in tokens and not any(w in p for p in scene_parts)]
    _place_modifiers(tokens, classes, excluded)
    scene_parts += _loose_places(tokens, classes, scene_parts, excluded)
    scene = ", ".join(dict.fromkeys(scene_parts))[:300]
    style = ", ".join(dict.fromkeys(m.group(0) for m in find(STYLE_PATTERN, text)))[:300]
    return Extraction(
        classes=classes,
        n_images=n_images,
        n_images_candidates=free_numbers,
        size=size,
        tasks=tasks,
        weak_tasks=weak_tasks,
        formats=formats,
        difficulty=_difficulty(text),
        scene=scene,
        style=style,
        words=set(tokens),
        questions=questions,
        splits=splits,
        seed=seed,
        unexplained=_unexplained(tokens, classes, scene + " " + style),
        prepared=text_wo_size,
        notices=notices,
        headers=headers,
    )


def _place_modifiers(tokens: list[str], classes: list[Candidate], excluded: list[tuple[int, int]]) -> None:
    """A place noun right before a class is a kind of that object ('park benches', 'office chairs'): it becomes
    the class's attribute, so it reaches the render prompt instead of replacing the scene."""
    for cand in classes:
        k = cand.position - 1
        word = tokens[k] if k >= 0 else ""
        if word in SCENE_NOUNS and word not in GENERIC_PLACES and word not in cand.attributes and not in_spans(
            k, excluded
        ):
            cand.attributes.append(word)


def _loose_places(tokens: list[str], classes: list[Candidate], scene_parts: list[str],
                  excluded: list[tuple[int, int]]) -> list[str]:
    """Place nouns no phrase reader took ('snowy landscape', 'a beach, 200 images'): the scene, not lost.
    Adjacent ones stay one place ('parking lot')."""
    taken = {w for part in [*scene_parts, *(c.name for c in classes)] for w in part.split()}
    taken |= {w for c in classes for w in c.attributes}
    found: list[list[str]] = []
    last = -2
    for i, tok in enumerate(tokens):
        place = tok in SCENE_NOUNS and tok not in GENERIC_PLACES and tok not in STYLE_WORDS
        if place and tok not in taken and not in_spans(i, excluded):
            if i == last + 1:
                found[-1].append(tok)
            else:
                found.append([tok])
            last = i
    return [" ".join(words) for words in found]


def _without_list_headers(tokens: list[str], candidates: list[Candidate]) -> tuple[list[Candidate], list[str]]:
    """'farm animals: cows, sheep, …', '5 kinds of fruit: apples, …': the word before a colon that opens a list
    of classes names their group, not another class. Returns the candidates left and the group names."""
    colons = {i for i, tok in enumerate(tokens) if tok == ":" and len(read_list(tokens, i + 1, strict=True)) >= 2}
    is_header = [c.position + len(c.name.split()) in colons for c in candidates]
    kept = [c for c, header in zip(candidates, is_header, strict=True) if not header]
    return kept, [" ".join([*c.attributes, c.name]) for c, header in zip(candidates, is_header, strict=True) if header]


def _unexplained(tokens: list[str], classes: list[Candidate], context: str) -> list[str]:
    """Content words of the request that no reader used: a hint that an LLM may read more than the rules."""
    used = {w for c in classes for w in [*c.name.split(), *" ".join(c.attributes).split()]} | set(context.split())
    known = VOCABULARY | FILLER | SURFACES | SEPARATORS | LOCATIVE | set(ALIASES)
    out = []
    for tok in tokens:
        verb = tok.endswith(("ing", "ed")) and tok not in ING_NOUNS
        if not tok[0].isalpha() or len(tok) < 3 or verb or tok in known or singular(tok) in known or tok in used:
            continue
        if singular(tok) in used or tok.rstrip(",") in used:
            continue
        out.append(tok)
    return list(dict.fromkeys(out))


def _has_count_cue(tokens: list[str], index: int) -> bool:
    """'generate 40', 'a dataset of 200': a verb or noun before the number that makes it the image count."""
    before = tokens[max(0, index - 3) : index]
    cues = {"generate", "make", "create", "produce", "need", "want", "render", "dataset", "total"}
    return any(w in cues for w in before) or before[-2:] in (["set", "of"], ["dataset", "of"])


def _keywords(patterns: dict, text: str, *, strip_semantic: bool = False) -> list:
    """The keys whose pattern occurs (not negated) in the text, in the patterns' order."""
    found = []
    for key, pattern in patterns.items():
        hits = find(pattern, text)
        if hits:
            found.append(key)
            if strip_semantic and key is Task.semantic_segmentation:
                for m in hits:  # "semantic segmentation" must not also read as instance "segmentation"
                    text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    return found


def _difficulty(text: str) -> Difficulty | None:
    """The first difficulty stated; easy/medium phrases are read (and blanked) before the hard ones."""
    hits: list[tuple[int, Difficulty]] = []
    for level in (Difficulty.easy, Difficulty.medium):  # "not too hard" and "medium" win over "hard"
        for m in find(DIFFICULTY_PATTERNS[level], text):
            hits.append((m.start(), level))
            text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    hits += [(m.start(), Difficulty.hard) for m in find(DIFFICULTY_PATTERNS[Difficulty.hard], text)]
    return min(hits)[1] if hits else None
