"""Prompts for the diffusion modes, and DetDiffusion-style difficulty.

The scene prompt is the one the loop expanded for the image (`RenderRequest.prompt`), or, when none was
given, the layout's objects with counts and the spec's scene and style. Object prompts (inpaint, GLIGEN
phrases) are the class's render prompt with the layout object's attributes and the style.

Difficulty (DetDiffusion's perception-aware attributes): the spec's `difficulty` adds prompt terms that make
objects easier or harder to perceive and scales how strongly the layout holds:

| difficulty | prompt terms                                            | control scale | refine strength |
|------------|---------------------------------------------------------|---------------|-----------------|
| easy       | clearly visible, well lit, sharp focus, plain background | × 1.15        | × 0.8           |
| medium     | —                                                       | × 1.0         | × 1.0           |
| hard       | partially occluded, cluttered background, dim light, motion blur | × 0.7 | × 1.3 (≤ 0.95) |

(easy pins objects harder to the control map and keeps the composite's clean look; hard loosens both.)
"""

from __future__ import annotations

from dataclasses import dataclass

from synthloop.tools.types import Difficulty, Layout, LayoutObject, TaskSpec


@dataclass(frozen=True)
class DifficultyProfile:
    """What a difficulty changes: prompt terms and factors on control scale and refine strength."""

    terms: str
    control_factor: float
    strength_factor: float


PROFILES = {
    Difficulty.easy: DifficultyProfile("clearly visible, well lit, sharp focus, plain background", 1.15, 0.8),
    Difficulty.medium: DifficultyProfile("", 1.0, 1.0),
    Difficulty.hard: DifficultyProfile("partially occluded, cluttered background, dim light, motion blur", 0.7, 1.3),
}
NEUTRAL = PROFILES[Difficulty.medium]
MAX_REFINE_STRENGTH = 0.95


def difficulty_profile(spec: TaskSpec, enabled: bool) -> DifficultyProfile:
    """The profile of the spec's difficulty (the neutral one when the option is off)."""
    return PROFILES[spec.difficulty] if enabled else NEUTRAL


def with_terms(prompt: str, terms: str) -> str:
    """`prompt` followed by comma-separated extra terms (none added twice)."""
    extra = [t for t in (s.strip() for s in terms.split(",")) if t and t not in prompt]
    return ", ".join([prompt, *extra]) if extra else prompt


def scene_prompt(layout: Layout, spec: TaskSpec, given: str) -> str:
    """The loop's prompt for this image, else one built from the layout (counts, scene, style)."""
    if given.strip():
        return given.strip()
    from synthloop.tools.render.compositor import scene_prompt as layout_prompt

    return f"a photo of {layout_prompt(layout, spec)}"


def background_prompt(spec: TaskSpec) -> str:
    """The empty scene (inpaint mode paints objects into it afterwards)."""
    scene = spec.scene or "a plain background"
    text = f"a photo of {scene}, empty, nothing in the foreground"
    return f"{text}, {spec.style}" if spec.style else text


def object_prompt(obj: LayoutObject, spec: TaskSpec) -> str:
    """One object: its class's render prompt with the layout object's own attributes, in the spec's style."""
    prompts = {o.name: o.render_prompt for o in spec.objects}
    base = prompts.get(obj.category, obj.category)
    extra = [a for a in obj.attributes if a not in base.split()]
    text = f"a photo of {' '.join([*extra, base])}"
    return f"{text}, {spec.style}" if spec.style else text
