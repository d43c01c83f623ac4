"""Prompt templates as files, read with importlib.resources.

A template is a Markdown file in this package that starts with a front-matter block declaring its variables:

    ---
    variables: [request, examples]
    ---
    Text with {{request}} and {{examples}} placeholders.

Rendering is strict: every declared variable must be given, no undeclared one may be, and the body may use
no placeholder that is not declared. Substitution is a single pass, so a value that itself contains
`{{...}}` is inserted verbatim and never expanded. `Prompt.sha256` is the hash of the whole template file,
recorded in provenance so a result can be traced to the exact prompt text that produced it.

Few-shot examples live in separate JSONL files (`load_examples`), never inlined in a template.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

_FRONT_MATTER = re.compile(r"\A---\n(?P<meta>.*?)\n---\n(?P<body>.*)\Z", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[a-z0-9_]+$")


class PromptError(ValueError):
    """A template is malformed or was rendered with the wrong variables."""


@dataclass(frozen=True)
class Prompt:
    """A loaded template: its name, declared variables, body and the hash of the file text."""

    name: str
    variables: tuple[str, ...]
    body: str
    sha256: str

    def render(self, **values: str) -> str:
        """Fill every declared variable; missing or extra variables raise `PromptError`."""
        given, declared = set(values), set(self.variables)
        if given != declared:
            missing, extra = sorted(declared - given), sorted(given - declared)
            raise PromptError(f"prompt '{self.name}': missing variables {missing}, unexpected {extra}")
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), self.body)


def parse_prompt(name: str, text: str) -> Prompt:
    """Build a `Prompt` from template text (front matter + body); checks placeholders against variables."""
    text = text.replace("\r\n", "\n")
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise PromptError(f"prompt '{name}': missing front matter ('---\\nvariables: [...]\\n---')")
    try:
        meta = yaml.safe_load(match.group("meta")) or {}
    except yaml.YAMLError as exc:
        raise PromptError(f"prompt '{name}': unreadable front matter: {exc}") from exc
    variables = meta.get("variables", []) if isinstance(meta, dict) else None
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise PromptError(f"prompt '{name}': 'variables' must be a list of names")
    used = set(_PLACEHOLDER.findall(match.group("body")))
    if used != set(variables):
        raise PromptError(f"prompt '{name}': placeholders {sorted(used)} do not match the declared {sorted(variables)}")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Prompt(name=name, variables=tuple(variables), body=match.group("body"), sha256=digest)


def _read(filename: str) -> str:
    try:
        return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(f"no prompt file '{filename}' in {__name__}") from exc


@cache
def load_prompt(name: str) -> Prompt:
    """Load the template `<name>.md` shipped in this package (cached)."""
    if not _NAME.match(name):
        raise PromptError(f"invalid prompt name '{name}'")
    return parse_prompt(name, _read(f"{name}.md"))


@cache
def _examples(name: str) -> tuple[str, tuple[dict[str, Any], ...]]:
    text = _read(f"{name}.jsonl")
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptError(f"{name}.jsonl line {lineno}: {exc}") from exc
        if not isinstance(row, dict):
            raise PromptError(f"{name}.jsonl line {lineno}: expected a JSON object")
        rows.append(row)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), tuple(rows)


def load_examples(name: str) -> list[dict[str, Any]]:
    """Few-shot examples from `<name>.jsonl`: one JSON object per line (blank lines skipped)."""
    if not _NAME.match(name):
        raise PromptError(f"invalid examples name '{name}'")
    return copy.deepcopy(list(_examples(name)[1]))


def examples_sha256(name: str) -> str:
    """Hash of the examples file `<name>.jsonl`, for provenance."""
    return _examples(name)[0]
