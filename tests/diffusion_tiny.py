"""Tiny random diffusers models for CPU tests, built offline and saved in diffusers' folder format.

Everything is built from configs with fixed seeds (diffusers' own `get_dummy_components` style): a CLIP
tokenizer from a hand-written character vocabulary (no hub), a 2-layer CLIP text encoder, a two-block UNet
and VAE (VAE factor 2), then `save_pretrained(folder)` so the renderer loads it through the same
`from_pretrained` path a hub id takes. Variants: text-to-image SD, 9-channel inpainting, InstructPix2Pix
(8 channels), GLIGEN (gated attention), a ControlNet matching the UNet, and an IP-Adapter whose state dict is
made from the UNet's attention shapes (the upstream test recipe) next to a tiny CLIP image encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthloop.evals.diffusion_bench import write_tokenizer

CROSS_DIM = 32
IMAGE_EMBED_DIM = 32


def _tokenizer(scratch: Path) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(write_tokenizer(scratch / "tokenizer-source"))


def _text_encoder() -> Any:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=CROSS_DIM,
                                        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                        vocab_size=1000))


def _unet(in_channels: int = 4, **extra: Any) -> Any:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=32, norm_num_groups=2,
                                in_channels=in_channels, out_channels=4, cross_attention_dim=CROSS_DIM,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), **extra)


def _vae() -> Any:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(4, 8), in_channels=3, out_channels=3, norm_num_groups=2,
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4)


def _scheduler() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def _save(pipeline_class: str, folder: Path, unet: Any) -> Path:
    import diffusers

    cls = getattr(diffusers, pipeline_class)
    pipe = cls(unet=unet, vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(folder.parent),
               scheduler=_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def tiny_sd(folder: Path) -> Path:
    """A text-to-image SD 1.x pipeline folder (also what img2img and a 4-channel inpaint load)."""
    return _save("StableDiffusionPipeline", folder, _unet())


def tiny_inpaint(folder: Path) -> Path:
    """An inpainting checkpoint: a 9-channel UNet (latents, mask, masked-image latents)."""
    return _save("StableDiffusionInpaintPipeline", folder, _unet(in_channels=9))


def tiny_pix2pix(folder: Path) -> Path:
    """An InstructPix2Pix checkpoint: an 8-channel UNet (latents and source-image latents)."""
    return _save("StableDiffusionInstructPix2PixPipeline", folder, _unet(in_channels=8))


def tiny_gligen(folder: Path) -> Path:
    """A text-box GLIGEN checkpoint (gated self-attention with a box/phrase position net)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _save("StableDiffusionGLIGENPipeline", folder, _unet(attention_type="gated"))


def tiny_controlnet(folder: Path) -> Path:
    """A ControlNet for the tiny UNet (its conditioning encoder downsamples by the VAE factor, 2)."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    ControlNetModel.from_unet(_unet(), conditioning_embedding_out_channels=(16, 32)).save_pretrained(folder)
    return folder


def tiny_ip_adapter(folder: Path) -> Path:
    """IP-Adapter weights for the tiny UNet (state dict from its attention shapes) and a tiny CLIP image encoder
    in `image_encoder/`; load with weight `ip_adapter.safetensors`."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=IMAGE_EMBED_DIM, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, image_size=32, patch_size=4)).save_pretrained(folder / "image_encoder")
    unet = _unet()
    state = {"image_proj.proj.weight": torch.randn(4 * CROSS_DIM, IMAGE_EMBED_DIM) * 0.1,
             "image_proj.proj.bias": torch.zeros(4 * CROSS_DIM),
             "image_proj.norm.weight": torch.ones(CROSS_DIM), "image_proj.norm.bias": torch.zeros(CROSS_DIM)}
    channels = unet.config.block_out_channels
    key_id = 1
    for name in unet.attn_processors:
        if not name.endswith("attn2.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        for key in ("to_k_ip", "to_v_ip"):
            state[f"ip_adapter.{key_id}.{key}.weight"] = torch.randn(hidden, CROSS_DIM) * 0.5
        key_id += 2
    save_file(state, str(folder / "ip_adapter.safetensors"))
    return folder


def tiny_sdxl(folder: Path) -> Path:
    """An SDXL pipeline: two text encoders (the second with projection), text-time added conditioning."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=1)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(4, 8), in_channels=3, out_channels=3, norm_num_groups=2,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        latent_channels=4, force_upcast=True)
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                            num_attention_heads=4, num_hidden_layers=2, vocab_size=1000, projection_dim=32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(config)
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(config)
    tokenizer = _tokenizer(folder.parent)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                              tokenizer_2=tokenizer, unet=unet, scheduler=scheduler).save_pretrained(folder)
    return folder
