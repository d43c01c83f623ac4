"""Reading a COCO instances file with one clear error for each way it can be unusable.

Shared by the reference loader (`tools/reference.py`), the audit (`tools/critic/audit.py`) and the evals that
read COCO files; each passes its own error class (a ValueError) so its callers catch what they already catch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COCO_LISTS = ("images", "annotations", "categories")


def read_coco_file(path: Path, error: type[ValueError], *, lists: tuple[str, ...] = COCO_LISTS,
                   what: str = "COCO file") -> dict[str, Any]:
    """The JSON object of the COCO instances file at `path`, whose `lists` keys hold lists.

    A missing or unreadable file, invalid JSON, or a missing list raises `error` with one line naming the file
    and the problem; `what` names the file in those lines ("reference COCO file").
    """
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise error(f"{path} is not a COCO instances file: not a JSON object")
    for key in lists:
        if not isinstance(data.get(key), list):
            raise error(f"{path} is not a COCO instances file: no '{key}' list")
    return data
