"""The ADE20K (SceneParse150) classes and colour palette that segmentation ControlNets were trained on
(colour of class k = PALETTE[k]; the same table as MMSegmentation's ADE20KDataset), and the mapping from a
dataset's class names to them."""

from __future__ import annotations

import hashlib

CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
    "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
    "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board",
    "shower", "radiator", "glass", "clock", "flag",
)
_HEX = (
    "787878", "b47878", "06e6e6", "503232", "04c803", "787850", "8c8c8c", "cc05ff", "e6e6e6", "04fa07", "e005ff",
    "ebff07", "96053d", "787846", "08ff33", "ff0652", "8fff8c", "ccff04", "ff3307", "cc4603", "0066c8", "3de6fa",
    "ff0633", "0b66ff", "ff0747", "ff09e0", "0907e6", "dcdcdc", "ff095c", "7009ff", "08ffd6", "07ffe0", "ffb806",
    "0aff47", "ff290a", "07ffff", "e0ff08", "6608ff", "ff3d06", "ffc207", "ff7a08", "00ff14", "ff0829", "ff0599",
    "0633ff", "eb0cff", "a09614", "00a3ff", "8c8c8c", "fa0a0f", "14ff00", "1fff00", "ff1f00", "ffe000", "99ff00",
    "0000ff", "ff4700", "00ebff", "00adff", "1f00ff", "0bc8c8", "ff5200", "00fff5", "003dff", "00ff70", "00ff85",
    "ff0000", "ffa300", "ff6600", "c2ff00", "008fff", "33ff00", "0052ff", "00ff29", "00ffad", "0a00ff", "adff00",
    "00ff99", "ff5c00", "ff00ff", "ff00f5", "ff0066", "ffad00", "ff0014", "ffb8b8", "001fff", "00ff3d", "0047ff",
    "ff00cc", "00ffc2", "00ff52", "000aff", "0070ff", "3300ff", "00c2ff", "007aff", "00ffa3", "ff9900", "00ff0a",
    "ff7000", "8fff00", "5200ff", "a3ff00", "ffeb00", "08b8aa", "8500ff", "00ff5c", "b800ff", "ff001f", "00b8ff",
    "00d6ff", "ff0070", "5cff00", "00e0ff", "70e0ff", "46b8a0", "a300ff", "9900ff", "47ff00", "ff00a3", "ffcc00",
    "ff008f", "00ffeb", "85ff00", "ff00eb", "f500ff", "ff007a", "fff500", "0abed4", "d6ff00", "00ccff", "1400ff",
    "ffff00", "0099ff", "0029ff", "00ffcc", "2900ff", "29ff00", "ad00ff", "00f5ff", "4700ff", "7a00ff", "00ffb8",
    "005cff", "b8ff00", "0085ff", "ffd600", "19c2c2", "66ff00", "5c00ff",
)
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)) for h in _HEX)

# Common dataset (COCO-style) names → the ADE20K class a segmentation ControlNet knows them as.
SYNONYMS = {
    "motorcycle": "minibike", "motorbike": "minibike", "bike": "bicycle", "aeroplane": "airplane",
    "plane": "airplane", "couch": "sofa", "potted plant": "plant", "houseplant": "plant", "dining table": "table",
    "tv": "television receiver", "television": "television receiver", "laptop": "computer", "cup": "glass",
    "mug": "glass", "wine glass": "glass", "teddy bear": "plaything", "toy": "plaything", "sports ball": "ball",
    "backpack": "bag", "handbag": "bag", "suitcase": "bag", "stop sign": "signboard", "sign": "signboard",
    "trash can": "ashcan", "bin": "ashcan", "bowl": "pot", "picture": "painting", "window": "windowpane",
    "carpet": "rug", "cat": "animal", "dog": "animal", "bird": "animal", "horse": "animal", "sheep": "animal",
    "cow": "animal", "elephant": "animal", "bear": "animal", "zebra": "animal", "giraffe": "animal",
    "banana": "food", "apple": "food", "sandwich": "food", "orange": "food", "broccoli": "food", "carrot": "food",
    "hot dog": "food", "pizza": "food", "donut": "food", "cake": "food", "fruit": "food", "man": "person",
    "woman": "person", "child": "person", "people": "person", "pedestrian": "person",
}
# ADE20K classes that are places rather than things: never handed to an unknown object class.
_STUFF = {"wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk", "earth", "mountain",
          "water", "sea", "field", "fence", "rock", "sand", "path", "stairs", "runway", "river", "bridge", "hill",
          "dirt track", "land", "stage", "swimming pool", "waterfall", "lake", "pier", "house", "skyscraper",
          "grandstand", "tower", "hovel"}
_INDEX = {name: k for k, name in enumerate(CLASSES)}


def ade_class(name: str) -> int | None:
    """The ADE20K class index of a dataset class name (exact, a synonym, its last word, or singular), or None."""
    name = name.strip().lower()
    for candidate in (name, SYNONYMS.get(name), name.split()[-1] if name else None, name.rstrip("s")):
        if candidate is None:
            continue
        candidate = SYNONYMS.get(candidate, candidate)
        if candidate in _INDEX:
            return _INDEX[candidate]
    return None


def fallback_class(name: str, taken: set[int]) -> int:
    """A stable ADE20K thing class for a name with no match, avoiding classes already in use where possible."""
    things = [k for k, c in enumerate(CLASSES) if c not in _STUFF]
    free = [k for k in things if k not in taken] or things
    digest = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")
    return free[digest % len(free)]


def scene_class(scene: str) -> int | None:
    """The ADE20K class of the scene's ground or setting (e.g. 'kitchen table' → table), or None."""
    words = scene.lower().replace(",", " ").split()
    for size in (2, 1):
        for start in range(len(words) - size + 1):
            phrase = " ".join(words[start:start + size])
            if phrase in _INDEX:
                return _INDEX[phrase]
    return None
