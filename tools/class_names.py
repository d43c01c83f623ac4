"""Class names compared across datasets: one normal form, and a map onto the 80 COCO classes.

`normal_class_name` lower-cases, turns `_`/`-` into spaces and singularises the last word ("Wine_Glasses" →
"wine glass"). `coco_class_for` maps a name onto one of the 80 official COCO names, exactly or through a table
of plural forms and synonyms ("mug" → "cup", "motorbike" → "motorcycle", "tvmonitor" → "tv"); a name with no
safe counterpart maps to None (plate, glass, forklift): nothing is mapped to an unrelated object. The same table
reads the Darknet class files (`coco.names` spells motorbike, aeroplane, sofa, pottedplant, diningtable,
tvmonitor).
"""

from __future__ import annotations

import re

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

# Normal form (see normal_class_name) → official COCO name. Only unambiguous words: "bat" (the animal),
# "glass" (eyeglasses or a tumbler), "plate", "table" (any table) and "monitor" stay unmapped on purpose.
COCO_SYNONYMS: dict[str, str] = {
    "people": "person", "human": "person", "man": "person", "woman": "person", "child": "person",
    "kid": "person", "boy": "person", "girl": "person", "pedestrian": "person",
    "bike": "bicycle", "push bike": "bicycle",
    "automobile": "car", "sedan": "car", "taxi": "car",
    "motorbike": "motorcycle", "motor bike": "motorcycle",
    "aeroplane": "airplane", "plane": "airplane", "aircraft": "airplane", "airliner": "airplane",
    "jet": "airplane",
    "locomotive": "train",
    "lorry": "truck",
    "ship": "boat", "sailboat": "boat", "yacht": "boat",
    "traffic signal": "traffic light", "stoplight": "traffic light",
    "hydrant": "fire hydrant",
    "kitten": "cat", "puppy": "dog", "pony": "horse", "lamb": "sheep", "cattle": "cow", "calf": "cow",
    "rucksack": "backpack", "knapsack": "backpack",
    "purse": "handbag",
    "necktie": "tie",
    "ski": "skis",
    "ball": "sports ball", "football": "sports ball", "soccer ball": "sports ball", "basketball": "sports ball",
    "tennis ball": "sports ball", "volleyball": "sports ball",
    "baseball mitt": "baseball glove",
    "racket": "tennis racket", "racquet": "tennis racket", "tennis racquet": "tennis racket",
    "wineglass": "wine glass",
    "mug": "cup", "coffee cup": "cup", "teacup": "cup", "coffee mug": "cup",
    "hotdog": "hot dog",
    "doughnut": "donut",
    "sofa": "couch", "settee": "couch",
    "pottedplant": "potted plant", "houseplant": "potted plant",
    "diningtable": "dining table", "dinner table": "dining table", "kitchen table": "dining table",
    "television": "tv", "tvmonitor": "tv", "tv monitor": "tv", "tv set": "tv",
    "notebook computer": "laptop",
    "computer mouse": "mouse",
    "remote control": "remote",
    "cellphone": "cell phone", "mobile phone": "cell phone", "smartphone": "cell phone", "phone": "cell phone",
    "microwave oven": "microwave",
    "fridge": "refrigerator",
    "teddy": "teddy bear", "teddybear": "teddy bear",
    "hair dryer": "hair drier", "hairdryer": "hair drier", "blow dryer": "hair drier",
    "tooth brush": "toothbrush",
}  # fmt: skip

_IRREGULAR_PLURALS = {
    "people": "people", "children": "child", "men": "man", "women": "woman", "mice": "mouse", "geese": "goose",
    "teeth": "tooth", "feet": "foot", "oxen": "ox", "knives": "knife", "leaves": "leaf", "shelves": "shelf",
    "wolves": "wolf", "calves": "calf", "halves": "half", "loaves": "loaf", "buses": "bus", "glasses": "glass",
    "skis": "ski", "cookies": "cookie", "movies": "movie", "ties": "tie", "pies": "pie", "species": "species",
    "series": "series", "scissors": "scissors", "sheep": "sheep", "fish": "fish", "deer": "deer",
}  # fmt: skip


def singular(word: str) -> str:
    """English singular of one lower-case word (suffix rules plus a table of irregular forms)."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ves"):
        return word[:-3] + "f"
    if word.endswith(("ches", "shes", "xes", "zes", "sses", "oes")):
        return word[:-2]
    return word[:-1]


def normal_class_name(name: str) -> str:
    """Lower case, `_`/`-` read as spaces, spaces squeezed, last word singular: "Wine_Glasses" → "wine glass"."""
    words = re.sub(r"[_\-]+", " ", str(name).strip().lower()).split()
    if not words:
        return ""
    return " ".join([*words[:-1], singular(words[-1])])


_COCO_BY_NORMAL = {normal_class_name(name): name for name in COCO_CLASSES}


def coco_class_for(name: str) -> str | None:
    """The official COCO class `name` stands for (exact, plural or synonym), or None when there is none."""
    normal = normal_class_name(name)
    if normal in _COCO_BY_NORMAL:
        return _COCO_BY_NORMAL[normal]
    if normal in COCO_SYNONYMS:
        return COCO_SYNONYMS[normal]
    squeezed = normal.replace(" ", "")  # "tv monitor" / "tvmonitor", "hot dog" / "hotdog"
    return COCO_SYNONYMS.get(squeezed) or _COCO_BY_NORMAL.get(squeezed)
