"""The diffusion bench: real-size architectures (checked against the published parameter counts, on the meta
device) and its plumbing end to end on tiny configs (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from synthloop.evals import diffusion_bench

# Published sizes of the real models' components (diffusers checkpoints of SD 1.5 and SDXL base 1.0).
SD15 = {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}
SDXL = {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840}


@pytest.mark.parametrize(("arch", "published"), [("sd15", SD15), ("sdxl", SDXL)])
def test_architectures_have_the_real_sizes(arch: str, published: dict[str, int]) -> None:
    assert diffusion_bench.parameter_counts(arch) == published


def _tiny_unet(arch: str) -> dict[str, Any]:
    return {"block_out_channels": (4, 8), "layers_per_block": 1, "sample_size": 32, "norm_num_groups": 2,
            "cross_attention_dim": 32, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D")}


def _tiny_vae(arch: str) -> dict[str, Any]:
    return {"block_out_channels": (4, 8), "norm_num_groups": 2, "latent_channels": 4,
            "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2}


def _tiny_text(arch: str) -> list[dict[str, Any]]:
    return [{"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
             "vocab_size": 1000, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}]


@pytest.mark.parametrize("control", ["none", "refine"])
def test_bench_measures_both_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, control: str) -> None:
    monkeypatch.setattr(diffusion_bench, "unet_config", _tiny_unet)
    monkeypatch.setattr(diffusion_bench, "vae_config", _tiny_vae)
    monkeypatch.setattr(diffusion_bench, "text_configs", _tiny_text)
    result = diffusion_bench.run_diffusion_bench("sd15", control=control, steps=2, batch=2, size=64, n=4,
                                                 repeats=1, work_dir=tmp_path, device="cpu")
    assert (result.n, result.batch, result.size, result.device, result.dtype) == (4, 2, 64, "cpu", "float32")
    assert len(result.raw_seconds) == len(result.synthloop_seconds) == 1
    assert result.raw_ips > 0 and result.synthloop_ips > 0
    assert result.ratio == pytest.approx(result.synthloop_ips / result.raw_ips)
    text = diffusion_bench.format_diffusion_bench(result)
    assert "images/s" in text and "ratio synthloop/raw" in text


def test_bench_refuses_multi_pass_modes() -> None:
    result = subprocess.run([sys.executable, "-m", "synthloop.agent.cli", "bench", "--renderer", "diffusion",
                             "--control", "inpaint"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--control" in lines[0], result.stderr
