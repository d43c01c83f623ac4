"""Class ↔ asset matching: a tiny WordNet database written here (always runs) and, where Debian's wordnet-base
is installed, the real one on the labelled pairs and their traps."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.tools.assets.calibrate import load_pairs, score
from synthloop.tools.assets.describe import head_term
from synthloop.tools.assets.matcher import Matcher, MatchParams, normalise_name
from synthloop.tools.assets.wordnet import WordNet, load_wordnet

# name: (lexicographer file number, lemmas, hypernym names, gloss); 3 Tops, 5 animal, 6 artifact.
SYNSETS = {
    "entity": (3, ["entity"], [], "that which exists"),
    "object": (3, ["object"], ["entity"], "a tangible and visible entity"),
    "artifact": (6, ["artifact"], ["object"], "a man-made object"),
    "animal": (5, ["animal"], ["object"], "a living organism"),
    "rodent": (5, ["rodent"], ["animal"], "a gnawing mammal"),
    "mouse_animal": (5, ["mouse"], ["rodent"], "any of numerous small rodents"),
    "instrumentality": (6, ["instrumentality"], ["artifact"], "an artifact that serves a purpose"),
    "device": (6, ["device"], ["instrumentality"], "an instrumentality invented for a purpose"),
    "mouse_device": (6, ["mouse", "computer_mouse"], ["device"], "a hand-operated electronic device for a computer"),
    "keyboard": (6, ["keyboard"], ["device"], "a device with keys for a computer"),
    "spectacles": (6, ["spectacles", "glasses"], ["device"], "optical instrument worn on the eyes"),
    "tableware": (6, ["tableware"], ["instrumentality"], "articles for use at the table"),
    "cutlery": (6, ["cutlery"], ["tableware"], "implements for eating"),
    "fork": (6, ["fork"], ["cutlery"], "cutlery used for serving and eating food"),
    "vehicle": (6, ["vehicle"], ["instrumentality"], "a conveyance that transports people or objects"),
    "forklift": (6, ["forklift"], ["vehicle"], "a small industrial vehicle with a power operated platform"),
    "container": (6, ["container"], ["instrumentality"], "any object that can hold things"),
    "cup": (6, ["cup"], ["container"], "a small open container usually used for drinking"),
    "coffee_cup": (6, ["coffee_cup"], ["cup"], "a cup from which coffee is drunk"),
    "glass": (6, ["glass"], ["container"], "a container for holding liquids while drinking"),
}
SENSE_ORDER = {"mouse": ["mouse_animal", "mouse_device"]}
# Depth thresholds scaled to this shallow hierarchy (the real one is about twice as deep).
TINY_PARAMS = MatchParams(min_class_depth=2, min_related_depth=3)


def write_wordnet(root: Path) -> Path:
    """A WordNet 3.0-format noun database (index.noun, data.noun with true byte offsets) of SYNSETS."""
    names = list(SYNSETS)
    hyponyms: dict[str, list[str]] = {n: [] for n in names}
    for name, (_, _, parents, _) in SYNSETS.items():
        for parent in parents:
            hyponyms[parent].append(name)

    def line(name: str, offsets: dict[str, int]) -> str:
        lexfile, lemmas, parents, gloss = SYNSETS[name]
        pointers = [f"@ {offsets[p]:08d} n 0000" for p in parents] + [f"~ {offsets[c]:08d} n 0000"
                                                                       for c in hyponyms[name]]
        words = " ".join(f"{lemma} 0" for lemma in lemmas)
        return (f"{offsets[name]:08d} {lexfile:02d} n {len(lemmas):02x} {words} {len(pointers):03d} "
                f"{' '.join(pointers)} | {gloss}  \n")

    header = "  1 This is a test database\n"
    offsets = dict.fromkeys(names, 0)
    position = len(header)
    for name in names:  # every offset has 8 digits, so line lengths do not depend on their values
        offsets[name] = position
        position += len(line(name, offsets).encode())
    (root / "data.noun").write_text(header + "".join(line(n, offsets) for n in names), encoding="utf-8")
    senses: dict[str, list[str]] = {}
    for name in names:
        for lemma in SYNSETS[name][1]:
            senses.setdefault(lemma, []).append(name)
    senses.update(SENSE_ORDER)
    index = [f"{lemma} n {len(s)} 1 @ {len(s)} 0 {' '.join(f'{offsets[x]:08d}' for x in s)}  \n"
             for lemma, s in sorted(senses.items())]
    (root / "index.noun").write_text(header + "".join(index), encoding="utf-8")
    (root / "noun.exc").write_text("mice mouse\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny_wordnet(tmp_path_factory: pytest.TempPathFactory) -> WordNet:
    return WordNet(write_wordnet(tmp_path_factory.mktemp("wordnet")))


def test_the_reader_finds_senses_lemmas_and_hypernyms(tiny_wordnet: WordNet) -> None:
    mouse = tiny_wordnet.senses("mice")
    assert [s.lexname for s in mouse] == ["animal", "artifact"]
    assert tiny_wordnet.lemma("glasses") == "glasses"  # the listed word wins over its singular
    assert tiny_wordnet.lemma("cups") == "cup"
    fork, cutlery = tiny_wordnet.senses("fork")[0], tiny_wordnet.senses("cutlery")[0]
    assert fork.hypernyms == (cutlery.offset,)
    assert tiny_wordnet.is_a(tiny_wordnet.senses("coffee cup")[0].offset, tiny_wordnet.senses("cup")[0].offset)


@pytest.mark.parametrize(("name", "context", "others", "description", "folder", "expected"), [
    ("fork", "kitchen", ["cup"], "A fork.", "household/dishes", True),
    ("fork", "kitchen", ["cup"], "A forklift.", "vehicles", False),
    ("mouse", "office", ["keyboard"], "A computer mouse.", "electronics", True),
    ("mouse", "office", ["keyboard"], "A mouse.", "animals/rodent", False),
    ("mouse", "", [], "A mouse.", "animals/rodent", True),
    ("glasses", "", [], "A pair of glasses.", "clothes", True),
    ("glasses", "", [], "A glass of water.", "household/dishes", False),
    ("glass", "", [], "A pair of glasses.", "clothes", False),
    ("cup", "kitchen", ["fork"], "A cup of coffee.", "household/dishes", True),
    ("cup", "kitchen", ["fork"], "coffee cup", "household/dishes", True),
    ("cup", "kitchen", ["fork"], "A glass of water.", "household/dishes", False),
    ("fork", "kitchen", ["cup"], "fork", "roadsigns", False),
])
def test_matcher_takes_the_sense_the_context_means(tiny_wordnet: WordNet, name: str, context: str,
                                                   others: list[str], description: str, folder: str,
                                                   expected: bool) -> None:
    matcher = Matcher(tiny_wordnet, TINY_PARAMS)
    sense = matcher.class_sense(name, [context], others)
    assert matcher.asset_matches(sense, description, folder.split("/")) is expected


def test_an_ambiguous_class_says_what_it_was_taken_for(tiny_wordnet: WordNet) -> None:
    matcher = Matcher(tiny_wordnet, TINY_PARAMS)
    office = matcher.class_sense("mouse", ["office desk"], ["keyboard"])
    alone = matcher.class_sense("mouse")
    assert "electronic device" in office.gloss and office.ambiguous
    assert "rodent" in alone.gloss and any("electronic" in a for a in alone.alternatives)


def test_without_wordnet_only_identical_names_match() -> None:
    matcher = Matcher(None)
    sense = matcher.class_sense("traffic lights")
    assert matcher.matches(sense, "traffic light", None)
    assert not matcher.matches(sense, "traffic cone", None)
    assert head_term("A fork.", None) == "fork"
    assert normalise_name("Traffic_Lights") == "traffic light"


REAL = load_wordnet()
needs_wordnet = pytest.mark.skipif(REAL is None, reason="Debian's wordnet-base is not installed "
                                                        "(scripts/setup.sh installs it where apt works)")


@needs_wordnet
def test_labelled_pairs_precision_and_recall() -> None:
    pairs = load_pairs()
    assert len(pairs) >= 150 and sum(p["match"] for p in pairs) >= 50
    result = score(pairs, REAL, MatchParams())
    assert result.precision >= 0.95, [(p["class"], p["asset"]) for p in result.errors if not p["match"]]
    assert result.recall >= 0.8


@needs_wordnet
@pytest.mark.parametrize(("name", "context", "others", "description", "folder"), [
    ("fork", "kitchen table", ["cup", "plate"], "A forklift.", "vehicles"),
    ("mouse", "office desk", ["keyboard", "laptop"], "A mouse.", "animals/mammals/rodents"),
    ("glasses", "", ["hat"], "A glass of water.", "household/dishes"),
    ("orange", "kitchen table", ["banana"], "orange button", "buttons"),
    ("dog", "park", ["person"], "A hot dog.", "food"),
    ("horse", "farm field", ["cow"], "horse", "transportation/roadsigns"),
    ("bat", "baseball field", ["person"], "A bat.", "seasonal/halloween"),
    ("crane", "lake shore", ["duck"], "A crane.", "vehicles/construction"),
])
def test_real_wordnet_rejects_the_traps(name: str, context: str, others: list[str], description: str,
                                        folder: str) -> None:
    matcher = Matcher(REAL)
    sense = matcher.class_sense(name, [context], others)
    assert not matcher.asset_matches(sense, description, folder.split("/"))


@needs_wordnet
@pytest.mark.parametrize(("name", "others", "gloss_word"), [
    ("dog", ["car", "bus"], "canis"),  # not the pawl, though cars and busbars are devices too
    ("plate", ["cup", "fork"], "dish"),
    ("mouse", ["keyboard", "laptop"], "device"),
    ("bus", ["car", "truck"], "passengers"),  # not the jalopy, a kind of car
    ("seal", ["dog"], "mammals"),
])
def test_real_wordnet_reads_a_class_beside_the_others(name: str, others: list[str], gloss_word: str) -> None:
    assert gloss_word in Matcher(REAL).class_sense(name, [""], others).gloss.lower()
