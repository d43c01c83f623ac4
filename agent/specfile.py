"""Reading TaskSpec files (YAML or JSON) with one clear error for anything wrong."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from synthloop.agent.errors import UserInputError
from synthloop.tools.types import TaskSpec


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One line naming the first invalid field and why."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    value = first.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return f"{what}: field '{where}': {first['msg']}{shown}"


def load_spec_file(path: str | Path) -> TaskSpec:
    """Load and validate a spec from a .yaml/.yml/.json file."""
    file = Path(path)
    if not file.is_file():
        raise UserInputError(f"spec file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read spec file {file}: {exc}") from exc
    except RecursionError as exc:
        raise UserInputError(f"spec file {file} is nested too deeply to be a spec") from exc
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = str(exc).splitlines()[0]
        raise UserInputError(f"spec file {file} is not valid {file.suffix.lstrip('.').upper() or 'YAML'}: "
                             f"{detail}") from exc
    if not isinstance(data, dict):
        raise UserInputError(f"spec file {file} must hold a mapping of spec fields, not {type(data).__name__}")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(describe_validation_error(exc, f"invalid spec {file}")) from exc
