"""Per class: where its objects will come from and how many distinct exemplars, in one line each.

    cup: 1 photo (Tux Paint); few exemplars: ...
    fork: 2 drawings (Tux Paint)
    crack: no real examples, procedural shapes; give examples with --assets DIR/crack/*.png
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from synthloop.tools.assets.library import AssetLibrary
from synthloop.tools.assets.types import SOURCE_NAMES

MIN_EXEMPLARS = 5


@dataclass(frozen=True)
class ClassCoverage:
    """Where one class's objects come from.

    source: user | coco | tuxpaint | openclipart | procedural (the main one); exemplars: distinct cut-outs;
    counts: exemplars per (source, kind); sense: what the name was taken to mean; alternatives: other meanings
    the context ruled out; asset_ids and licences of the cut-outs; message: the one-line summary; warning: a
    caution (few exemplars, an ambiguous name), '' when none.
    """

    name: str
    source: str
    exemplars: int
    counts: dict[str, int]
    sense: str
    alternatives: tuple[str, ...]
    asset_ids: tuple[str, ...]
    licences: tuple[str, ...]
    message: str
    warning: str = ""


def coverage(class_names: Sequence[str], sources: AssetLibrary, *, context: Iterable[str] = (),
             context_for: Mapping[str, Sequence[str]] | None = None) -> dict[str, ClassCoverage]:
    """For each class: where its objects come from and how many distinct exemplars, with a one-line message
    and a warning when it has few exemplars (a model may overfit them) or an ambiguous name.

    context: words that place every class (scene, style); context_for: more words per class (its attributes
    and prompt), as the renderer uses them."""
    context = list(context)
    result = {}
    for name in class_names:
        selection = sources.select(name, [*context, *(context_for or {}).get(name, ())], class_names)
        kinds = Counter((a.source, "photo" if a.kind == "user" else a.kind) for a in selection.assets)
        counts = {f"{source}:{kind}": n for (source, kind), n in sorted(kinds.items())}
        warnings = []
        if not selection.assets:
            message = (f"{name}: no real examples, procedural shapes; give examples with "
                       f"--assets DIR/{name.replace(' ', '_')}/*.png")
        else:
            parts = [f"{n} {_plural(kind, n)} ({SOURCE_NAMES[source]})" for (source, kind), n in sorted(
                kinds.items(), key=lambda item: (-item[1], item[0]))]
            message = f"{name}: {', '.join(parts)}"
            if len(selection.assets) < MIN_EXEMPLARS:
                warnings.append(f"few exemplars ({len(selection.assets)}): a model may overfit them; the renderer "
                                f"varies them (flips, crops, recolouring, perspective), and more with --assets help")
        sense = selection.sense
        if sense.ambiguous and selection.assets and selection.source not in ("user", "coco"):
            warnings.append(f"'{name}' taken as: {sense.gloss}; not {'; '.join(sense.alternatives[:2])} "
                            f"(name the scene or a more specific class to change it)")
        warning = "; ".join(warnings)
        result[name] = ClassCoverage(
            name=name, source=selection.source, exemplars=len(selection.assets), counts=counts,
            sense=sense.gloss, alternatives=sense.alternatives, asset_ids=tuple(a.id for a in selection.assets),
            licences=tuple(sorted({a.licence for a in selection.assets})),
            message=f"{message}; {warning}" if warning else message, warning=warning)
    return result


def _plural(kind: str, n: int) -> str:
    return kind if n == 1 else f"{kind}s"
