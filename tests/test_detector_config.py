"""The `detector` run-config section: off by default, adds the detector judge when set, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from synthloop.agent.backends import make_judges
from synthloop.agent.config import ConfigError, DetectorConfig, RunConfig, load_config
from synthloop.agent.errors import UserInputError
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.duplicates import DuplicateIndex
from synthloop.tools.types import Annotation, Instance, Layout, ObjectSpec, Sample, TaskSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_no_detector_judge_by_default() -> None:
    config = RunConfig()
    assert config.detector is None
    assert all(not judge.id.startswith("detector") for judge in make_judges(config, DuplicateIndex()))


def test_detector_section_reads_from_yaml(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("detector:\n  backend: owlv2\n  model: /models/owlv2\n  min_score: 0.2\n  policy: reject\n")
    config = load_config(file)
    assert config.detector == DetectorConfig(backend="owlv2", model="/models/owlv2", min_score=0.2, policy="reject")
    file.write_text("detector:\n  backend: owlv2\n  model: /m\n  policy: maybe\n")
    with pytest.raises(ConfigError, match=r"detector\.policy"):
        load_config(file)


def test_a_missing_model_path_is_a_user_error(tmp_path: Path) -> None:
    config = RunConfig(detector=DetectorConfig(backend="owlv2", model=str(tmp_path / "missing")))
    with pytest.raises(UserInputError, match=r"^detector: detector model path does not exist: .*missing$"):
        make_judges(config, DuplicateIndex())


def test_an_unknown_backend_or_option_fails_when_the_config_is_read(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("detector:\n  backend: yolo9\n  model: /m\n")
    with pytest.raises(ConfigError, match=r"^invalid config value 'detector': unknown detector 'yolo9' \(available"):
        load_config(file)
    file.write_text("detector:\n  backend: owlv2\n  model: /m\n  options:\n    score_treshold: 0.1\n")
    with pytest.raises(ConfigError, match="detector 'owlv2' has no option 'score_treshold'"):
        load_config(file)


def test_an_old_config_file_still_reads_and_builds(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    from test_detector_backends import tiny_darknet

    model = tiny_darknet(tmp_path / "yolo")
    file = tmp_path / "run.yaml"  # the flat form written before detectors had a registry, device ignored by Darknet
    file.write_text(f"detector:\n  backend: yolov3_darknet\n  model: {model}\n  device: auto\n  min_score: 0.2\n"
                    "  options:\n    input_size: 64\n    aliases: {plate: bowl}\n")
    judges = make_judges(load_config(file), DuplicateIndex())
    assert judges[-1].id == "detector.agreement" and judges[-1].min_score == 0.2
    assert judges[-1].detector.vocabulary == frozenset({"cup", "fork", "bowl", "plate"})
    assert judges[-1].detector.input_size == 64


def test_a_configured_detector_judges_last(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from helpers_tiny_detectors import tiny_owl

    model = tiny_owl(tmp_path / "owl")
    config = RunConfig(detector=DetectorConfig(backend="owlv2", model=str(model), device="cpu", max_edits=50))
    judges = make_judges(config, DuplicateIndex())
    assert judges[-1].id == "detector.agreement"
    assert judges[-1].max_edits == 50
    spec = TaskSpec(objects=[ObjectSpec(name="cup")], width=64, height=64)
    sample = Sample(id="s", index=0, attempt=0, seed=0, split="train", image_path="images/train/s.png", width=64,
                    height=64, layout=Layout(width=64, height=64, objects=[], seed=0),
                    annotation=Annotation(instances=[Instance(category="cup", bbox=(8, 8, 20, 20), area=400)]))
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    verdict = judges[-1].judge(JudgeInput(sample=sample, image=image, spec=spec))
    assert verdict.judge == "detector.agreement"
    assert {"precision", "recall", "mean_iou", "n_missing", "n_extra"} <= set(verdict.scores)
