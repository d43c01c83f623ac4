"""Prompt expansion for text-conditioned renderers (see `expand.py`)."""

from synthloop.tools.prompting.expand import PromptBank, bank_for, dedupe, image_prompt, load_embedder

__all__ = ["PromptBank", "bank_for", "dedupe", "image_prompt", "load_embedder"]
