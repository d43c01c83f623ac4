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

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from synthloop.agent.request_fields import (
    ALIASES,
    SplitsFound,
    blank,
    extract_seed,
    extract_splits,
    fix_typos,
    mark_object_nouns,
    restore_alias,
)
from synthloop.tools.types import (
    MAX_IMAGES,
    MAX_OBJECTS_PER_IMAGE,
    MAX_SIDE,
    MIN_SIDE,
    Difficulty,
    ExportFormat,
    ObjectSpec,
    Splits,
    Task,
    TaskSpec,
)

DEFAULT_N_IMAGES = 100
DEFAULT_SIZE = 512
MAX_CLASSES = 20
MAX_REQUEST_CHARS = 4000
NO_CLASS_QUESTION = "Which objects should the images contain?"


# --- the LLM's proposal: a small, bounded extraction schema ---------------------------------------------


def _clip(limit: int) -> BeforeValidator:
    """Truncate strings/lists instead of rejecting them: grounding repairs content anyway."""

    def clip(value: object) -> object:
        return value[:limit] if isinstance(value, str | list) else value

    return BeforeValidator(clip)


ShortText = Annotated[str, _clip(40), Field(max_length=40)]
TaskName = Literal[
    "detection",
    "instance_segmentation",
    "semantic_segmentation",
    "captioning",
    "referring_expressions",
    "scene_graph",
]


class PlanProposal(BaseModel):
    """What the LLM is asked to extract; every list is bounded so small models cannot loop."""

    classes: Annotated[list[ShortText], _clip(8), Field(max_length=8)] = Field(default_factory=list)
    n_images: int | None = None
    width: int | None = None
    height: int | None = None
    tasks: Annotated[list[TaskName], _clip(6), Field(max_length=6)] = Field(default_factory=list)
    formats: Annotated[list[Literal["coco", "yolo", "hf"]], _clip(3), Field(max_length=3)] = Field(default_factory=list)
    scene: Annotated[str, _clip(80), Field(max_length=80)] = ""
    style: Annotated[str, _clip(80), Field(max_length=80)] = ""
    difficulty: Literal["easy", "medium", "hard"] | None = None


# --- vocabularies ----------------------------------------------------------------------------------------


def _ordered(text: str) -> list[str]:
    return text.split()


def _words(text: str) -> frozenset[str]:
    return frozenset(_ordered(text))


_UNITS = {
    w: i
    for i, w in enumerate(
        _ordered(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen"
        )
    )
}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_ordered("twenty thirty forty fifty sixty seventy eighty ninety"))}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 10**9, "trillion": 10**12}
_NUMBER_WORDS = {*_UNITS, *_TENS, *_SCALES, "dozen"}

_IMAGE_NOUNS = _words(
    "image images picture pictures photo photos photograph photographs sample samples scene scenes frame "
    "frames "
    "example examples render renders rendering renderings shot shots pic pics img imgs"
)
_COLOURS = _words(
    "red green blue yellow orange purple pink brown black white gray grey silver gold golden beige cyan "
    "magenta "
    "violet turquoise teal navy maroon"
)
_COLOUR_MODIFIERS = {"light", "dark", "bright", "pale"}
_ATTRIBUTE_WORDS = _words(
    "small large big tiny huge little tall short long round square wooden metal metallic plastic shiny rusty "
    "old new ripe striped spotted dirty clean broken empty full fresh young adult wet dry transparent"
)
_GENERIC = _words(
    "different various random assorted several many multiple some few lots lot kinds kind types type "
    "sorts sort "
    "variety mix number numbers bunch group groups set sets pair pairs thing things item items object "
    "objects "
    "stuff class classes category categories instance instances other more each every all any no both only "
    "a an the one this that these those my your their our its synthetic training dataset data single lone"
)
_BLOCKED = _words(
    "size resolution format formats style quality lighting light background angle view views camera pixel "
    "pixels "
    "annotation annotations label labels split splits total per me us you i it they them he she we something "
    "anything everything nothing someone please need want make generate create produce give get build want "
    "ignore instruction instructions previous prompt file files folder path system command password dir "
    "directory write read delete run execute code json etc tmp home root user export exported exporting save "
    "saved output outputs return provide format formatted"
)
_TASK_WORDS = _words(
    "box boxes bbox bboxes bounding detection detections detect detecting detector mask masks segmentation "
    "segment segmenting segmented polygon polygons semantic instance caption captions captioning captioned "
    "referring expression expressions refexp refexps graph graphs relation relations relationship "
    "relationships "
    "map maps"
)
_FORMAT_WORDS = {"coco", "yolo", "hf", "huggingface", "json", "txt", "csv"}
_DIFFICULTY_WORDS = _words(
    "easy easier hard harder difficult challenging medium moderate cluttered clutter crowded occluded "
    "occlusion "
    "occlusions simple tricky dense sparse isolated"
)
_STYLE_TERMS = [
    "photorealistic", "photo-realistic", "realistic", "cartoon", "cartoonish", "anime", "sketch",
    "watercolor",
    "watercolour", "oil painting", "pixel art", "3d render", "low-poly", "low poly", "clay", "minimalist",
    "vintage", "studio lighting", "night", "nighttime", "foggy", "rainy", "snowy", "sunny", "dusk",
    "daylight",
    "top-down", "aerial", "isometric", "comic", "line art",
    # weather and time of day
    "cloudy", "overcast", "stormy", "hazy", "misty", "sunset", "sunrise", "dawn", "morning", "noon", "midday",
    "afternoon", "evening", "golden hour", "twilight", "low light", "low-light", "backlit",
    # camera
    "dashcam", "dash cam", "overhead", "bird's-eye", "birds-eye", "bird's eye", "close-up", "closeup", "macro",
    "wide-angle", "wide angle", "fisheye", "fish-eye", "telephoto", "low angle", "low-angle", "high angle",
    "high-angle", "eye level", "eye-level", "cctv", "surveillance", "security camera", "drone view", "handheld",
    "first-person", "egocentric", "front view", "side view", "motion blur", "blurry", "grainy",
]  # fmt: skip
_STYLE_WORDS = {w for term in _STYLE_TERMS for w in term.replace("-", " ").split()} | {"photorealistic"}
_SCENE_NOUNS = _words(
    "kitchen street streets road roads park beach room bedroom bathroom office forest field fields city "
    "highway "
    "farm warehouse garden yard store shop supermarket market restaurant classroom factory landscape indoor "
    "indoors outdoor outdoors underwater ocean sea lake river mountain mountains desert snow sky background "
    "interior exterior countryside village town parking lot lab laboratory hospital airport station tabletop "
    "rooftop rooftops roof roofs harbor harbour port meadow meadows site orchard vineyard stadium court "
    "scenery environment environments setting settings place places area areas"
)
_LOCATIVE = {
    "in",
    "on",
    "at",
    "inside",
    "atop",
    "under",
    "underneath",
    "beneath",
    "across",
    "along",
    "near",
    "onto",
}
_INTRODUCERS = {
    "with", "of", "containing", "contain", "contains", "showing", "show", "shows", "featuring", "feature",
    "features", "including", "include", "includes", "having", "has", "have", "detect", "detecting", "segment",
    "label", "labelling", "labeling", "annotate", "find", "depicting", "depict", "depicts", "wearing",
    "holding", "carrying", "riding", "pushing", "pulling",
}  # fmt: skip
_SEPARATORS = {",", "and", "or", "&", "/", "plus", "+", ";"}
_STOPS = {
    ".", "!", "?", ":", ";", "(", ")", "[", "]", '"', "'", "\n", "-", "=", "in", "on", "at", "for",
    "from", "to",
    "into", "onto", "over", "above", "below", "under", "behind", "beside", "next", "near", "by", "inside",
    "outside", "around", "across", "along", "between", "among", "against", "is", "are", "be", "being", "was",
    "were", "that", "which", "where", "who", "while", "when", "so", "as", "but", "if", "then", "than", "also",
    "like", "using", "use", "used", "per", "each", "every", "only", "just", "very", "not", "no", "without",
    "please", "i", "we", "you", "it", "they", "them", "do", "does", "should", "must", "can", "could", "would",
    "will",
}  # fmt: skip
_ING_NOUNS = _words(
    "building buildings clothing painting paintings ring rings king kings string strings ceiling wedding "
    "pudding "
    "bedding earring earrings sibling siblings seedling seedlings dumpling dumplings railing railings"
)
# COCO's 80 classes plus frequent request nouns: found anywhere in the text, not only in "with X, Y" lists.
_KNOWN_OBJECTS = _words(
    "person bicycle car motorcycle airplane bus train truck boat bench bird cat dog horse sheep cow elephant "
    "bear zebra giraffe backpack umbrella handbag suitcase frisbee skis snowboard kite skateboard surfboard "
    "bottle cup fork knife spoon bowl banana apple sandwich orange broccoli carrot pizza donut cake chair "
    "couch "
    "bed toilet tv laptop mouse keyboard microwave oven toaster sink refrigerator book clock vase scissors "
    "toothbrush pedestrian cyclist plate mug glass table desk lamp tree flower plant shoe hat ball phone "
    "bike "
    "motorbike van scooter drone robot screw bolt nut hammer wrench screwdriver pen pencil key coin leaf "
    "rock "
    "fish duck chicken pig goat deer rabbit tomato potato lemon strawberry grape pear peach cherry egg bread "
    "cookie bag helmet glove sock shirt jacket face hand sign window door house tower bridge ship plane "
    "helicopter rocket can jar cube sphere cylinder cone pyramid star circle triangle toy doll block card "
    "bottle cap tire wheel fruit vegetable animal vehicle insect butterfly bee spider ant frog snake turtle "
    "lion tiger monkey wolf fox owl parrot penguin dolphin whale shark crab boxobj maskobj"
) | {
    "traffic light", "fire hydrant", "stop sign", "parking meter", "sports ball", "baseball bat",
    "baseball glove",
    "tennis racket", "wine glass", "hot dog", "potted plant", "dining table", "cell phone", "teddy bear",
    "hair drier", "hair dryer", "street sign", "license plate", "solar panel", "coffee cup", "power line",
}  # fmt: skip
_IRREGULAR_PLURALS = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
    "geese": "goose",
    "teeth": "tooth", "feet": "foot", "knives": "knife", "leaves": "leaf", "wolves": "wolf",
    "shelves": "shelf",
    "loaves": "loaf", "halves": "half", "calves": "calf", "wives": "wife", "lives": "life", "dice": "die",
    "shoes": "shoe", "toes": "toe", "canoes": "canoe", "oxen": "ox", "cacti": "cactus", "fungi": "fungus",
    "axes": "axe", "scarves": "scarf", "thieves": "thief", "cookies": "cookie", "movies": "movie",
    "pies": "pie", "ties": "tie", "skis": "skis", "scissors": "scissors", "glasses": "glass",
    "series": "series",
    "species": "species", "sheep": "sheep", "fish": "fish", "deer": "deer", "buses": "bus", "gases": "gas",
    "lenses": "lens",
}  # fmt: skip

_TASK_PATTERNS: dict[Task, str] = {
    Task.semantic_segmentation: r"semantic[ -]?(?:segmentation|masks?|labels?|maps?)"
    r"|segmentation maps?|label maps?",
    Task.instance_segmentation: r"instance[ -]?(?:segmentation|masks?)|masks?|segmentations?"
    r"|segment(?:ing|ed)?"
    r"|polygons?",
    Task.detection: r"bounding[ -]?box(?:es)?|b-?box(?:es)?|bbox(?:es)?|boxes|box annotations?|detections?"
    r"|detect(?:ing|or|ors)?",
    Task.captioning: r"captions?|captioning|captioned",
    Task.referring_expressions: r"referring[ -]?expressions?|referring|refexps?|ref-?coco",
    Task.scene_graph: r"scene[ -]?graphs?|relations?|relationships?",
}
# Weaker cues: accepted only when the LLM proposed the same task.
_WEAK_TASK_PATTERNS: dict[Task, str] = {
    Task.detection: r"locali[sz]e|locali[sz]ation|locate|find",
    Task.instance_segmentation: r"outlines?|silhouettes?|pixel[ -](?:level|accurate)|cut-?outs?",
    Task.semantic_segmentation: r"per[ -]pixel|every pixel|pixel[ -]wise",
    Task.captioning: r"describe|descriptions?",
    Task.referring_expressions: r"refer(?:s|ring)? to",
    Task.scene_graph: r"interactions?|spatial",
}
_FORMAT_PATTERNS: dict[ExportFormat, str] = {
    ExportFormat.coco: r"(?:ms[ -]?)?coco",
    ExportFormat.yolo: r"yolo\w*|darknet",
    ExportFormat.hf: r"hugging ?face|hf|🤗",
}
_EASY = (
    r"easy|easier|simple|uncluttered|isolated|sparse|(?:no|without|minimal) occlusions?|non-?occluded"
    r"|unoccluded"
)
_HARD = (
    r"hard|harder|difficult|challenging|occlu\w*|clutter\w*|crowded|dense|densely|overlapping|tricky"
    r"|tiny objects|small objects"
)
_MEDIUM = r"medium|moderate|intermediate"
_NOT_A_MODIFIER = (
    _STOPS
    | _GENERIC
    | _STYLE_WORDS
    | _SEPARATORS
    | _NUMBER_WORDS
    | _INTRODUCERS
    | _BLOCKED
    | _IMAGE_NOUNS
    | _TASK_WORDS
    | _FORMAT_WORDS
    | _DIFFICULTY_WORDS
    | _LOCATIVE
)
_NEGATION = re.compile(r"\b(?:no|without|not|don'?t|do not|never|skip|excluding|except)\b(?:\s+\w+){0,2}\s*$")

_SIZE_PAIR = re.compile(r"\b(\d{2,9})\s*(?:x|\*|by)\s*(\d{2,9})(?:\s*(?:px|pixels?))?\b")
_SIZE_SINGLE = re.compile(r"\b(\d{1,9})\s*(?:px|pixels?)\b")
_TOKEN = re.compile(r"\d+(?:[,.]\d+)*[a-z]*|[a-z][a-z0-9]*(?:['\-][a-z0-9]+)*|\n|[^\sa-z0-9]")
_DIGITS = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(k)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# --- text helpers ----------------------------------------------------------------------------------------


def clean_request(request: object) -> str:
    """The request as safe text: str only, control characters dropped, at most `MAX_REQUEST_CHARS`."""
    if isinstance(request, bytes):
        request = request.decode("utf-8", errors="replace")
    if not isinstance(request, str):
        return ""
    text = _CONTROL.sub(" ", request.replace("\ufffd", " ")).strip()
    return text[:MAX_REQUEST_CHARS]


def _normalise(text: str) -> str:
    """Lower-case ASCII for matching: NFKD without accents, '×' read as 'x', whitespace squeezed per line."""
    text = unicodedata.normalize("NFKC", text).replace("×", "x")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.lower().replace("’", "'")
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


def singular(word: str) -> str:
    """English singular of one lower-case word (rules plus a table of irregular forms)."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ves"):
        return word[:-3] + "f"
    if word.endswith(("ches", "shes", "xes", "zes", "sses", "oes")):
        return word[:-2]
    return word[:-1]


def _is_negated(text: str, start: int) -> bool:
    return bool(_NEGATION.search(text[max(0, start - 30) : start]))


def _find(pattern: str, text: str) -> list[re.Match[str]]:
    """Non-negated whole-word matches of a pattern."""
    return [m for m in re.finditer(rf"(?<![\w-])(?:{pattern})(?!\w)", text) if not _is_negated(text, m.start())]


# --- numbers ---------------------------------------------------------------------------------------------


@dataclass
class _Number:
    value: float
    start: int  # token index
    end: int  # token index after the number
    role: str = ""  # "", "images", "count"
    correction: bool = False  # "make it 300": replaces earlier image counts


def _digit_value(token: str) -> float | None:
    m = _DIGITS.fullmatch(token)
    if m is None:
        return None
    digits = m.group(1).replace(",", "")
    if len(digits) > 15:  # absurd; still a number, so it ends up as an out-of-range question
        return 1e15
    value = float(digits + ("." + m.group(2) if m.group(2) else ""))
    return value * 1000 if m.group(3) else value


def _parse_number(tokens: list[str], i: int) -> tuple[float, int] | None:
    """A number starting at token i: digits (with 'k', 'thousand', 'dozen'...) or number words."""
    if i >= len(tokens):
        return None
    value = _digit_value(tokens[i])
    if value is not None:
        j = i + 1
        if j < len(tokens) and tokens[j] in (*_SCALES, "dozen"):
            value *= _SCALES.get(tokens[j], 12)
            j += 1
        return value, j
    total, current, seen, j = 0, 0, False, i
    while j < len(tokens):
        word = tokens[j]
        parts = word.split("-")
        nxt = tokens[j + 1] if j + 1 < len(tokens) else ""
        if word == "half" and not seen and tokens[j + 1 : j + 3] == ["a", "dozen"]:
            return 6.0, j + 3
        if word in ("a", "an") and not seen and nxt in (*_SCALES, "dozen"):
            current, j = 1, j + 1
            continue
        if word == "and" and seen and nxt.split("-")[0] in (*_UNITS, *_TENS):
            j += 1
            continue
        if not all(p in _NUMBER_WORDS for p in parts):
            break
        for p in parts:
            if p in _UNITS or p in _TENS:
                current += _UNITS.get(p, 0) + _TENS.get(p, 0)
            elif p == "hundred":
                current = max(current, 1) * 100
            elif p == "dozen":
                current = max(current, 1) * 12
            else:
                total, current = total + max(current, 1) * _SCALES[p], 0
        seen, j = True, j + 1
    return (float(total + current), j) if seen else None


def _is_int(value: float) -> bool:
    return value == int(value) and value >= 0


def _parse_count(tokens: list[str], i: int) -> tuple[int, int, int] | None:
    """A per-image count expression at token i → (min, max, next index): '3', '2-5', 'between 2 and 5',
    'up to 4', 'at least 2'."""
    tok = tokens[i] if i < len(tokens) else ""
    two = " ".join(tokens[i : i + 2])
    three = " ".join(tokens[i : i + 3])
    if tok == "between" or (tok == "from" and _parse_number(tokens, i + 1)):
        a = _parse_number(tokens, i + 1)
        if a and a[1] < len(tokens) and tokens[a[1]] in ("and", "to", "-"):
            b = _parse_number(tokens, a[1] + 1)
            if b and _is_int(a[0]) and _is_int(b[0]):
                lo, hi = sorted((int(a[0]), int(b[0])))
                return lo, hi, b[1]
        return None
    for phrase, kind in (("no more than", "max"), ("up to", "max"), ("at most", "max"), ("at least", "min")):
        n_words = len(phrase.split())
        if (two if n_words == 2 else three) == phrase:
            n = _parse_number(tokens, i + n_words)
            if n and _is_int(n[0]):
                v = int(n[0])
                return (min(1, v), v, n[1]) if kind == "max" else (v, v + 2, n[1])
            return None
    n = _parse_number(tokens, i)
    if n is None or not _is_int(n[0]):
        return None
    j = n[1]
    if j + 1 < len(tokens) and tokens[j] in ("-", "to", "–"):
        m = _parse_number(tokens, j + 1)
        if m and _is_int(m[0]):
            lo, hi = sorted((int(n[0]), int(m[0])))
            return lo, hi, m[1]
    return int(n[0]), int(n[0]), j


# --- class phrases ---------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    name: str
    position: int
    attributes: list[str] = field(default_factory=list)
    count: tuple[int, int] | None = None


def _phrase_to_class(words: list[str], *, stuff_ok: bool = False) -> tuple[str, list[str], bool] | None:
    """(class name, attributes, plural) for a noun phrase, or None when it names no object class."""
    attrs: list[str] = []
    rest: list[str] = []
    k = 0
    while k < len(words):
        w = words[k]
        nxt = words[k + 1] if k + 1 < len(words) else ""
        if w in _COLOUR_MODIFIERS and nxt in _COLOURS:
            attrs.append(f"{w} {nxt}")
            k += 2
            continue
        is_head = k == len(words) - 1
        leading_participle = not is_head and not rest and w.endswith("ed") and len(w) > 4
        if (w in _COLOURS and not (is_head and w in _KNOWN_OBJECTS)) or w in _ATTRIBUTE_WORDS or leading_participle:
            attrs.append(w)
        elif w not in _GENERIC and _digit_value(w) is None and w not in _NUMBER_WORDS:
            rest.append(w)
        k += 1
    # Trailing participles ("cars parked", "dogs running") are not part of the name.
    while rest and rest[-1].endswith(("ing", "ed")) and len(rest[-1]) > 4 and rest[-1] not in _ING_NOUNS:
        rest.pop()
    if not rest:
        return None
    if len(rest) > 3:
        rest = rest[-2:]
    head = rest[-1]
    blocked = _BLOCKED | _TASK_WORDS | _FORMAT_WORDS | _DIFFICULTY_WORDS | _IMAGE_NOUNS | _STYLE_WORDS
    if any(w in blocked or (w in _SCENE_NOUNS and not stuff_ok) or w in _NUMBER_WORDS for w in rest):
        return None
    name = " ".join([*rest[:-1], singular(head)])
    name = re.sub(r"[^a-z0-9 \-]", "", name).strip(" -")
    if not name or len(name) > 48 or not name[0].isalnum():
        return None
    return name, attrs, singular(head) != head


def _item_end(tokens: list[str], i: int) -> int:
    j = i
    while j < len(tokens) and j - i < 6:
        t = tokens[j]
        if t in _SEPARATORS or t in _STOPS or t in _INTRODUCERS or _is_punct(t):
            break
        if t in _TASK_WORDS or t in _FORMAT_WORDS or t in _IMAGE_NOUNS:
            break
        j += 1
    return j


def _is_punct(token: str) -> bool:
    return not token[0].isalnum()


def _list_candidates(tokens: list[str], *, stuff_ok: bool = False) -> list[_Candidate]:
    """Classes enumerated after an introducer: 'with 2-5 cups, red plates and forks'."""
    found: list[_Candidate] = []
    for i, tok in enumerate(tokens):
        if tok not in _INTRODUCERS:
            continue
        j = i + 1
        pending_attrs: list[str] = []
        while j < len(tokens):
            count = _parse_count(tokens, j)
            article = tokens[j] in ("a", "an", "one")
            k = count[2] if count else j
            end = _item_end(tokens, k)
            words = tokens[k:end]
            if count is None and not words:
                break
            parsed = _phrase_to_class(words, stuff_ok=stuff_ok) if words else None
            if parsed is None and words and all(w in _COLOURS or w in _ATTRIBUTE_WORDS for w in words):
                pending_attrs += words  # "red and blue cars": colours waiting for their noun
            elif parsed is None and words:
                break  # not a noun phrase: the enumeration is over
            elif parsed is not None:
                name, attrs, plural = parsed
                if count is None and article and not plural:
                    count = (1, 1, k)
                cnt = (count[0], count[1]) if count else None
                found.append(_Candidate(name, k, [*pending_attrs, *attrs], cnt))
                pending_attrs = []
            j = end
            if j < len(tokens) and tokens[j] in _SEPARATORS:
                j += 1
                if j < len(tokens) and tokens[j] in ("and", "or"):  # Oxford comma
                    j += 1
                continue
            break
    return found


def _locative_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Token spans of place phrases: 'on a kitchen table', 'in a park'."""
    spans = []
    for i, tok in enumerate(tokens):
        if tok not in _LOCATIVE:
            continue
        j = i + 1
        while j < len(tokens) and j - i <= 5:
            t = tokens[j]
            if _is_punct(t) or t in _SEPARATORS or t in _INTRODUCERS or t in _STOPS:
                break
            j += 1
        content = [t for t in tokens[i + 1 : j] if t not in ("a", "an", "the")]
        if content and not any(
            t in _BLOCKED or t in _TASK_WORDS or t in _FORMAT_WORDS or t in _IMAGE_NOUNS or t in _GENERIC
            or t in _STYLE_WORDS or _digit_value(t) is not None or t in _NUMBER_WORDS
            for t in content
        ):  # fmt: skip
            spans.append((i, j))
    return spans


def _lookback(tokens: list[str], start: int) -> tuple[list[str], tuple[int, int] | None]:
    """Attributes and a count written just before a class occurrence ('three red apples')."""
    attrs: list[str] = []
    k = start - 1
    while k >= 0:
        if tokens[k] in _COLOURS or tokens[k] in _ATTRIBUTE_WORDS:
            attrs.insert(0, tokens[k])
        elif tokens[k] in _COLOUR_MODIFIERS and attrs and attrs[0] in _COLOURS:
            attrs[0] = f"{tokens[k]} {attrs[0]}"
        elif not (tokens[k] in ("and", "or", ",") and k > 0 and tokens[k - 1] in _COLOURS):  # "red and blue"
            break
        k -= 1
    for back in range(min(k + 1, 5), 0, -1):
        count = _parse_count(tokens, k + 1 - back)
        if count and count[2] == k + 1:
            return attrs, (count[0], count[1])
    if k >= 0 and tokens[k] in ("a", "an") and singular(tokens[start]) == tokens[start]:
        return attrs, (1, 1)
    return attrs, None


def _occurrences(tokens: list[str], name: str) -> list[int]:
    """Token indices where a class name (singular or plural head) occurs as a whole-word span."""
    words = name.split()
    n = len(words)
    hits = []
    for i in range(len(tokens) - n + 1):
        if tokens[i : i + n - 1] == words[:-1] and singular(tokens[i + n - 1]) == words[-1]:
            hits.append(i)
    return hits


def _in_spans(index: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < index < b for a, b in spans)


def _is_noun_modifier(token: str) -> bool:
    """A word that can modify a noun as part of its name ('cereal' in 'cereal box'), not an attribute."""
    return (
        token[:1].isalpha() and token not in _NOT_A_MODIFIER and token not in _COLOURS
        and token not in _ATTRIBUTE_WORDS and not token.endswith("ed")
    )  # fmt: skip


def _known_candidates(tokens: list[str], place_spans: list[tuple[int, int]]) -> list[_Candidate]:
    """Known object nouns anywhere outside place phrases ('detect cars', 'dog images')."""
    found = []
    i = 0
    while i < len(tokens):
        bigram = f"{tokens[i]} {singular(tokens[i + 1])}" if i + 1 < len(tokens) else ""
        if bigram in _KNOWN_OBJECTS:
            name, width = bigram, 2
        else:
            name, width = singular(tokens[i]), 1
        nxt = singular(tokens[i + width]) if i + width < len(tokens) else ""
        is_modifier = nxt in _KNOWN_OBJECTS or (
            tokens[i] in _COLOURS and nxt[:1].isalpha() and nxt not in _STOPS | _SEPARATORS | _INTRODUCERS
        )
        if name in _KNOWN_OBJECTS and not is_modifier and not _in_spans(i, place_spans):
            if name in ALIASES and i > 0 and _is_noun_modifier(tokens[i - 1]):  # "cereal boxes"
                name, i = f"{tokens[i - 1]} {name}", i - 1
                width += 1
            attrs, count = _lookback(tokens, i)
            found.append(_Candidate(name, i, attrs, count))
        i += width
    return found


# --- grounding -------------------------------------------------------------------------------------------


@dataclass
class Extraction:
    """Everything read deterministically from one request (before defaults)."""

    classes: list[_Candidate]
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


_VOCABULARY = set().union(
    _IMAGE_NOUNS, _COLOURS, _ATTRIBUTE_WORDS, _GENERIC, _BLOCKED, _TASK_WORDS, _FORMAT_WORDS, _DIFFICULTY_WORDS,
    _STYLE_WORDS, _SCENE_NOUNS, _INTRODUCERS, _STOPS, _ING_NOUNS, _NUMBER_WORDS,
    {w for name in _KNOWN_OBJECTS for w in name.split()}, _IRREGULAR_PLURALS,
)
# Surfaces and places: "cups on plates", "laptops on desks" put objects somewhere; they are not classes.
_SURFACES = _words(
    "table tables desk desks plate plates tray trays shelf shelves counter counters bench benches workbench "
    "floor floors ground carpet carpets rug rugs couch couches sofa sofas bed beds conveyor belt belts wall walls "
    "grass sand water branch branches ice pavement sidewalk sidewalks tracks rail rails"
)
_CORRECTION = ("make it", "make that", "change it to", "actually", "rather", "instead")
_STANDALONE_SCENES = ("underwater", "indoors", "outdoors", "indoor", "outdoor")


def _prepare(request: str) -> tuple[str, SplitsFound | None, int | None]:
    """Normalised text with typos fixed, splits and seed read and blanked, object uses of box/mask marked."""
    text = fix_typos(_normalise(request), _VOCABULARY, _KNOWN_OBJECTS)
    seed = None
    if found_seed := extract_seed(text):
        seed, text = found_seed[0], blank(text, found_seed[1])
    splits = extract_splits(text)
    if splits is not None:
        text = blank(text, splits.span)
    return mark_object_nouns(text, _TASK_WORDS, _STOPS), splits, seed


def _image_numbers(tokens: list[str], numbers: list[_Number]) -> None:
    """Mark numbers that count images: '300 scenes', '200 of them', '..., 300' at the end, 'make it 300'."""
    for num in numbers:
        after = tokens[num.end : num.end + 2]
        before = " ".join(tokens[max(0, num.start - 3) : num.start])
        if after[:2] == ["of", "them"] or (after[:1] in (["total"], ["in"]) and after[1:2] == ["total"]):
            num.role = "images"
        elif any(before.endswith(cue) for cue in _CORRECTION):
            num.role, num.correction = "images", True
        for j in range(num.end, min(num.end + 4, len(tokens))):
            if tokens[j] in _IMAGE_NOUNS:
                num.role = "images"
                break
            if _is_punct(tokens[j]) or tokens[j] in _STOPS or tokens[j] in _INTRODUCERS:
                break


def _standalone(tokens: list[str], num: _Number) -> bool:
    """A number with nothing attached: '…, 300' or '300.' between punctuation or at the ends."""
    before = tokens[num.start - 1] if num.start > 0 else ","
    after = tokens[num.end] if num.end < len(tokens) else ","
    return _is_punct(before) and _is_punct(after) and before not in ("-", "/") and after not in ("-", "/", "x")


def _plural_place_objects(tokens: list[str], spans: list[tuple[int, int]], stuff_ok: bool) -> list[_Candidate]:
    """Bare plural nouns after on/in that are things, not places: 'license plates on cars', 'oranges in crates'."""
    found = []
    for span in list(spans):
        a, b = span
        content = tokens[a + 1 : b]
        if tokens[a] not in ("on", "in", "inside", "atop") or not content or content[0] in ("a", "an", "the"):
            continue
        head = content[-1]
        if singular(head) == head or head in _SURFACES or head in _SCENE_NOUNS or head in _STYLE_WORDS:
            continue
        parsed = _phrase_to_class(content, stuff_ok=stuff_ok)
        if parsed is not None:
            found.append(_Candidate(parsed[0], a + 1, parsed[1]))
            spans.remove(span)
    return found


def _purpose_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """'for a robot arm', 'for my warehouse app': what a dataset is for, not what is in it."""
    spans = []
    for i, tok in enumerate(tokens[:-1]):
        if tok == "for" and tokens[i + 1] in ("a", "an", "my", "our", "the", "their"):
            j = i + 2
            while j < len(tokens) and not (_is_punct(tokens[j]) or tokens[j] in _STOPS or tokens[j] in _INTRODUCERS):
                j += 1
            spans.append((i, j))
    return spans


def _image_noun_modifiers(tokens: list[str]) -> tuple[list[str], list[_Candidate], set[int]]:
    """'kitchen scenes', 'living room images' → scene phrases (and their token positions); 'dog images' → the
    class dog."""
    scene_phrases: list[str] = []
    positions: set[int] = set()
    classes: list[_Candidate] = []
    for j, tok in enumerate(tokens):
        if tok not in _IMAGE_NOUNS or (j + 1 < len(tokens) and tokens[j + 1] in ("graph", "graphs")):
            continue
        k, words = j - 1, []
        while k >= 0 and j - k <= 2 and tokens[k][0].isalpha() and tokens[k] not in _NOT_A_MODIFIER:
            words.insert(0, tokens[k])
            k -= 1
        if not words:
            continue
        if tok not in ("scene", "scenes") and singular(words[-1]) in _KNOWN_OBJECTS:
            classes.append(_Candidate(singular(words[-1]), j - 1))
            words = words[:-1]
        if words:
            scene_phrases.append(" ".join(words))
            positions.update(range(k + 1, k + 1 + len(words)))
    return scene_phrases, classes, positions


def extract(request: str, proposal: PlanProposal | None = None) -> Extraction:
    """Read classes, numbers, size, tasks, formats, difficulty, scene, style, splits and seed from the request.

    LLM-proposed classes are added when they are spans of the request and name an object; everything else
    here is deterministic.
    """
    text, splits, seed = _prepare(request)
    questions: list[str] = []

    size = None
    for m in _SIZE_PAIR.finditer(text):
        size = (int(m.group(1)), int(m.group(2)))
        break
    if size is None and (m := _SIZE_SINGLE.search(text)):
        size = (int(m.group(1)), int(m.group(1)))
    text_wo_size = _SIZE_SINGLE.sub(" , ", _SIZE_PAIR.sub(" , ", text))
    text_wo_size = re.sub(r"hugging\s+face", "huggingface", text_wo_size)  # not the object "face"
    tokens = _TOKEN.findall(text_wo_size)

    numbers: list[_Number] = []
    i = 0
    while i < len(tokens):
        parsed = _parse_number(tokens, i)
        if parsed is None:
            i += 1
            continue
        numbers.append(_Number(parsed[0], i, parsed[1]))
        i = parsed[1]
    _image_numbers(tokens, numbers)
    scene_parts, class_from_modifier, scene_positions = _image_noun_modifiers(tokens)

    tasks = _keywords(_TASK_PATTERNS, text, strip_semantic=True)
    stuff_ok = Task.semantic_segmentation in tasks  # "roads, sky and cars" are all classes then
    place_spans = _locative_spans(tokens)
    candidates = _list_candidates(tokens, stuff_ok=stuff_ok) + _plural_place_objects(tokens, place_spans, stuff_ok)
    excluded = place_spans + _purpose_spans(tokens)
    candidates += _known_candidates(tokens, excluded) + class_from_modifier
    candidates = [  # places belong to the scene
        c for c in candidates if not _in_spans(c.position, excluded) and c.position not in scene_positions
    ]
    if proposal is not None:
        candidates += _ground_llm_classes(tokens, proposal.classes, excluded)

    # Per-object counts above the per-image limit are not per-object counts ("a dataset of 200 cars").
    for cand in candidates:
        if cand.count and cand.count[1] > MAX_OBJECTS_PER_IMAGE:
            cand.count = None
        cand.name = restore_alias(cand.name)
    classes = _merge(candidates)
    counted = {c.position for c in classes if c.count}
    for num in numbers:
        if num.role != "images" and any(num.end <= p <= num.end + 3 for p in counted):
            num.role = "count"

    image_numbers = [n for n in numbers if n.role == "images" and _is_int(n.value)]
    free_numbers = [int(n.value) for n in numbers if n.role == "" and _is_int(n.value)]
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
        free = [n for n in numbers if n.role == "" and _is_int(n.value)]
        cue = [n for n in free if _has_count_cue(tokens, n.start) or _standalone(tokens, n)]
        if len(cue) == 1:
            n_images = int(cue[0].value)

    weak_tasks = _keywords(_WEAK_TASK_PATTERNS, text)
    formats = _keywords(_FORMAT_PATTERNS, text)

    scene_parts += [" ".join(tokens[a:b]) for a, b in place_spans]
    scene_parts += [w for w in _STANDALONE_SCENES if w in tokens and not any(w in p for p in scene_parts)]
    scene = ", ".join(dict.fromkeys(scene_parts))[:300]
    style = ", ".join(dict.fromkeys(m.group(0) for m in _find("|".join(map(re.escape, _STYLE_TERMS)), text)))[:300]
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
    )


_FILLER = _words(
    "i i'd i'm id im like would could can please want need make generate create give me some about around "
    "approximately roughly just only also thanks thank hi hello hey dataset set training train images good "
    "nice high quality realistic photos per image each total them there here with lots heavy heavily light "
    "lightly exactly plain difficulty level levels mode variety varied diverse"
)


def _unexplained(tokens: list[str], classes: list[_Candidate], context: str) -> list[str]:
    """Content words of the request that no reader used: a hint that an LLM may read more than the rules."""
    used = {w for c in classes for w in [*c.name.split(), *" ".join(c.attributes).split()]} | set(context.split())
    known = _VOCABULARY | _FILLER | _SURFACES | _SEPARATORS | _LOCATIVE | set(ALIASES)
    out = []
    for tok in tokens:
        verb = tok.endswith(("ing", "ed")) and tok not in _ING_NOUNS
        if not tok[0].isalpha() or len(tok) < 3 or verb or tok in known or singular(tok) in known or tok in used:
            continue
        if singular(tok) in used or tok.rstrip(",") in used:
            continue
        out.append(tok)
    return list(dict.fromkeys(out))


def _has_count_cue(tokens: list[str], index: int) -> bool:
    before = tokens[max(0, index - 3) : index]
    cues = {"generate", "make", "create", "produce", "need", "want", "render", "dataset", "total"}
    return any(w in cues for w in before) or before[-2:] in (["set", "of"], ["dataset", "of"])


def _ground_llm_classes(tokens: list[str], proposed: list[str], place_spans: list[tuple[int, int]]) -> list[_Candidate]:
    found = []
    for raw in proposed:
        words = _TOKEN.findall(_normalise(raw))
        parsed = _phrase_to_class([w for w in words if w[0].isalnum() and w not in _SEPARATORS | _STOPS | _INTRODUCERS])
        if parsed is None:
            continue
        name = parsed[0]
        hits = [h for h in _occurrences(tokens, name) if not _in_spans(h, place_spans)]
        if not hits and " " in name:  # "red car" → "car" is still a span
            name = name.split()[-1]
            hits = [h for h in _occurrences(tokens, name) if not _in_spans(h, place_spans)]
        if hits:
            attrs, count = _lookback(tokens, hits[0])
            found.append(_Candidate(name, hits[0], attrs, count))
    return found


def _merge(candidates: list[_Candidate]) -> list[_Candidate]:
    """One candidate per class name, in order of first mention; attributes united, first count kept."""
    merged: dict[str, _Candidate] = {}
    for cand in sorted(candidates, key=lambda c: c.position):
        if cand.name in merged:
            first = merged[cand.name]
            first.attributes = list(dict.fromkeys([*first.attributes, *cand.attributes]))
            first.count = first.count or cand.count
        else:
            merged[cand.name] = _Candidate(cand.name, cand.position, list(dict.fromkeys(cand.attributes)), cand.count)
    # A one-word class that is the head of a longer one ("light" vs "traffic light") is the same object.
    names = list(merged)
    for name in names:
        if any(other != name and other.endswith(" " + name) for other in names):
            merged.pop(name, None)
    return list(merged.values())


def _keywords(patterns: dict, text: str, *, strip_semantic: bool = False) -> list:
    found = []
    for key, pattern in patterns.items():
        hits = _find(pattern, text)
        if hits:
            found.append(key)
            if strip_semantic and key is Task.semantic_segmentation:
                for m in hits:  # "semantic segmentation" must not also read as instance "segmentation"
                    text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    return found


def _difficulty(text: str) -> Difficulty | None:
    hits: list[tuple[int, Difficulty]] = []
    for pattern, level in ((_EASY, Difficulty.easy), (_MEDIUM, Difficulty.medium)):
        for m in _find(pattern, text):
            hits.append((m.start(), level))
            text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    hits += [(m.start(), Difficulty.hard) for m in _find(_HARD, text)]
    return min(hits)[1] if hits else None


def _grounded_text(value: str, words: set[str], exclude: set[str]) -> str:
    """An LLM free-text value kept only if every content word occurs in the request."""
    content = [w for w in _TOKEN.findall(_normalise(value)) if w[0].isalnum() and w not in ("a", "an", "the")]
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

    classes = ex.classes
    if len(classes) > MAX_CLASSES:
        questions.append(f"The request names {len(classes)} object classes; only the first {MAX_CLASSES} were kept.")
        classes = classes[:MAX_CLASSES]
    objects = []
    for cand in classes:
        lo, hi = cand.count if cand.count else (1, 3)
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
    return TaskSpec(
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
        questions=questions[:10],
        defaults_used=defaults[:30],
    )
