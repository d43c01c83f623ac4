"""Language labels grounded in the layout: captions, referring expressions and scene-graph relations.

Entry point: `add_language_labels(layout, annotation, spec, *, seed, image=None, llm=None, vlm=None,
options=None)`, called after the instance annotator. Modules: `describe` (the visible objects), `relations`
(spatial rules), `model_relations` (LLM/VLM proposals with a model check), `referring` (generator) and
`resolver` (its independent reader), `captions` (templates, paraphrases) and `caption_check` (the checker),
`vocabulary` (the words they share).
"""

from synthloop.tools.annotate.language.caption_check import CaptionFacts, caption_facts, check_caption
from synthloop.tools.annotate.language.labels import LanguageOptions, add_language_labels
from synthloop.tools.annotate.language.resolver import Referent, Resolver

__all__ = [
    "CaptionFacts",
    "LanguageOptions",
    "Referent",
    "Resolver",
    "add_language_labels",
    "caption_facts",
    "check_caption",
]
