"""Candidate captions from a VLM through any OpenAI-compatible vision endpoint (`LLMClient`).

`vlm_captions(client, image)` sends the image (as a PNG data URL, like the VLM judge) with the rubric in
`prompts/vlm_captions.md` and returns the captions it wrote: stripped, deduplicated (case-insensitively), at
most `count`. They are **candidates**: a VLM can name objects, counts or colours the image does not have, so a
caller filters them against the layout (the caption checker) before keeping any. Transport errors and answers
that stay invalid raise the client's `LLMError`s; the caller decides whether to fall back.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field

from synthloop.prompts import load_prompt
from synthloop.tools.llm.client import LLMClient, user_message

CAPTIONS_PROMPT = "vlm_captions"
MAX_CAPTIONS = 8


class CaptionCandidates(BaseModel):
    """What the captioning rubric asks for (a bounded list: small models loop on unbounded ones)."""

    captions: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(min_length=1,
                                                                                max_length=MAX_CAPTIONS)


def vlm_captions(client: LLMClient, image: np.ndarray, *, count: int = 5, max_tokens: int = 400,
                 max_side: int = 1024) -> list[str]:
    """Up to `count` distinct candidate captions of an (H, W, 3) uint8 RGB image, in the VLM's order."""
    from synthloop.tools.critic.vlm import draw_annotation, png_bytes

    if not 1 <= count <= MAX_CAPTIONS:
        raise ValueError(f"count must be in 1..{MAX_CAPTIONS}, got {count}")
    text = load_prompt(CAPTIONS_PROMPT).render(count=str(count))
    picture = draw_annotation(image, None, max_side=max_side)
    answer = client.complete_json([user_message(text, [png_bytes(picture)])], CaptionCandidates,
                                  max_tokens=max_tokens)
    captions: list[str] = []
    seen: set[str] = set()
    for caption in answer.captions:
        clean = " ".join(caption.split())
        if clean and clean.lower() not in seen:
            seen.add(clean.lower())
            captions.append(clean)
    return captions[:count]
