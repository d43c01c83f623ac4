"""Detector backends: registered by name with options, tiny random models saved to disk load by path and return
well-formed detections; missing models, packages and bad options fail with one clear line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from synthloop.tools.critic.detector import Detection, Detector, DetectorError
from synthloop.tools.critic.detectors import BACKENDS, DETECTORS, build_detector, detector_block, load_detector

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers_tiny_detectors import tiny_grounding_dino, tiny_owl

CLASSES = ["cup", "plate", "wine glass"]
DARKNET_CLASSES = ["cup", "fork", "bowl"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("detectors")
    return {"owlv2": tiny_owl(root / "owlv2"), "owlvit": tiny_owl(root / "owlvit", variant="owlvit"),
            "grounding_dino": tiny_grounding_dino(root / "gdino"), "yolov3_darknet": tiny_darknet(root / "darknet")}


def tiny_darknet(directory: Path, seed: int = 0) -> Path:
    """A two-convolution Darknet YOLO head over three classes, random weights in Darknet's binary layout."""
    directory.mkdir(parents=True)
    n_out = 3 * (5 + len(DARKNET_CLASSES))
    (directory / "tiny.cfg").write_text(
        "[net]\nwidth=64\nheight=64\nchannels=3\n\n"
        "[convolutional]\nbatch_normalize=0\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n\n"
        f"[convolutional]\nfilters={n_out}\nsize=1\nstride=1\npad=1\nactivation=linear\n\n"
        f"[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses={len(DARKNET_CLASSES)}\nnum=3\n")
    (directory / "tiny.names").write_text("\n".join(DARKNET_CLASSES) + "\n")
    rng = np.random.default_rng(seed)
    head_bias = rng.normal(0, 0.1, n_out)
    head_bias[4::5 + len(DARKNET_CLASSES)] = 2.0  # confident objectness, so some boxes pass the thresholds
    weights = [rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8 * 3 * 3 * 3), head_bias, rng.normal(0, 0.5, n_out * 8)]
    header = np.array([0, 2, 0], np.int32).tobytes() + np.array([0], np.int64).tobytes()
    (directory / "tiny.weights").write_bytes(header + np.concatenate(weights).astype(np.float32).tobytes())
    return directory


def _image(seed: int = 0, height: int = 96, width: int = 128) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)


def _check(detections: list[Detection], names: list[str], width: int, height: int) -> None:
    assert detections, "a tiny model with a zero threshold still returns boxes"
    for det in detections:
        assert isinstance(det, Detection) and det.category in names
        x, y, w, h = det.bbox
        assert min(x, y) >= 0 and w > 0 and h > 0 and x + w <= width + 1e-3 and y + h <= height + 1e-3
        assert 0.0 <= det.score <= 1.0


@pytest.mark.parametrize("backend", ["owlv2", "owlvit", "grounding_dino"])
def test_transformers_backend_loads_by_path_and_detects(models: dict[str, Path], backend: str) -> None:
    detector = load_detector(backend, str(models[backend]), device="cpu", options={"score_threshold": 0.0})
    assert isinstance(detector, Detector) and detector.vocabulary is None
    assert detector.id == f"{backend}:{models[backend]}"
    image = _image()
    first = detector.detect(image, CLASSES)
    _check(first, CLASSES, 128, 96)
    assert first == detector.detect(image, CLASSES), "same image, same detections"
    assert [d.score for d in first] == sorted((d.score for d in first), reverse=True)
    assert len(first) <= 100
    assert detector.detect(image, []) == []


def test_darknet_backend_loads_cfg_weights_and_names(models: dict[str, Path]) -> None:
    pytest.importorskip("cv2")
    detector = load_detector("yolov3_darknet", str(models["yolov3_darknet"]),
                             options={"input_size": 64, "score_threshold": 0.3, "aliases": {"plate": "bowl"}})
    assert detector.vocabulary == frozenset({"cup", "fork", "bowl", "plate"})
    detections = detector.detect(_image(1, 48, 80), ["cup", "plate", "knife"])
    _check(detections, ["cup", "plate"], 80, 48)
    assert detector.detect(_image(1, 48, 80), ["knife"]) == []


def test_grounding_dino_maps_multiword_classes_to_their_tokens(models: dict[str, Path]) -> None:
    from synthloop.tools.critic.detectors.grounding_dino import class_prompt, token_spans

    detector = load_detector("grounding_dino", str(models["grounding_dino"]), device="cpu")
    tokenizer = detector.processor.tokenizer
    prompt = class_prompt(["Cup", "wine glass"])
    assert prompt == "cup. wine glass."
    ids = tokenizer(prompt)["input_ids"]
    assert token_spans(tokenizer, ["Cup", "wine glass"], ids) == [[1], [3, 4]]


def test_a_missing_model_path_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    for backend in ("owlv2", "grounding_dino", "yolov3_darknet"):
        with pytest.raises(DetectorError, match="does not exist") as err:
            load_detector(backend, str(missing))
        assert "\n" not in str(err.value) and str(missing) in str(err.value)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(DetectorError, match="is a file"):
        load_detector("owlv2", str(tmp_path / "model.safetensors"))


def test_an_uncached_hub_id_or_an_empty_directory_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="cannot load owlv2 model 'nobody/no-such-owl'"):
        load_detector("owlv2", "nobody/no-such-owl", device="cpu")
    with pytest.raises(DetectorError, match="cannot load grounding_dino model"):
        load_detector("grounding_dino", str(tmp_path), device="cpu")


def test_unknown_backend_and_bad_options_are_refused(models: dict[str, Path]) -> None:
    with pytest.raises(DetectorError, match=r"unknown detector 'yolo9' \(available: owlv2, owlvit, grounding_dino"):
        load_detector("yolo9", str(models["owlv2"]))
    with pytest.raises(DetectorError, match="detector 'owlv2' has no option 'no_such_option'"):
        load_detector("owlv2", str(models["owlv2"]), options={"no_such_option": 1})
    with pytest.raises(DetectorError, match="detector 'owlv2' option 'dtype'"):
        load_detector("owlv2", str(models["owlv2"]), dtype="int3")
    with pytest.raises(DetectorError, match="query_template must contain"):
        load_detector("owlv2", str(models["owlv2"]), options={"query_template": "a photo"})
    with pytest.raises(DetectorError, match="option 'score_threshold'"):
        load_detector("grounding_dino", str(models["grounding_dino"]), options={"score_threshold": 2})


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, models: dict[str, Path]) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(DetectorError, match=r"'owlv2' needs transformers, not installed here .*synthloop\[models\]"):
        load_detector("owlv2", str(models["owlv2"]))
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(DetectorError, match=r"'yolov3_darknet' needs cv2, not installed here .*synthloop\[models\]"):
        load_detector("yolov3_darknet", str(models["yolov3_darknet"]))


def test_registry_lists_every_backend_with_options_and_builds_from_a_block(models: dict[str, Path]) -> None:
    assert DETECTORS.names()[:4] == list(BACKENDS)
    rows = {row.name: row for row in DETECTORS.describe()}
    assert set(BACKENDS) <= set(rows)
    assert rows["owlv2"].options["model"]["required"] and rows["owlv2"].options["score_threshold"]["default"] == 0.05
    assert "aliases" in rows["yolov3_darknet"].options and "device" not in rows["yolov3_darknet"].options
    assert rows["grounding_dino"].capabilities == {"device": "auto"}
    detector = build_detector({"backend": "owlvit", "model": str(models["owlvit"]), "device": "cpu",
                               "score_threshold": 0.0})
    assert detector.id == f"owlvit:{models['owlvit']}"
    assert detector.score_threshold == 0.0 and detector.device == "cpu"


def test_the_flat_judge_settings_map_to_a_block_device_only_where_it_applies() -> None:
    block = detector_block("owlv2", "/m", device="cuda", dtype="float16", options={"max_detections": 5})
    assert block.backend == "owlv2"
    assert block.options == {"model": "/m", "device": "cuda", "dtype": "float16", "max_detections": 5}
    block = detector_block("yolov3_darknet", "/d", device="cuda", options={"input_size": 64})
    assert block.options == {"model": "/d", "input_size": 64}
