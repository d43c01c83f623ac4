"""Asset records and the error raised for unusable asset input."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AssetKind = Literal["photo", "drawing", "user"]
LICENCES = {
    "user": "user-provided",
    "coco": "user-provided (from the user's COCO dataset)",
    "tuxpaint": "GPL-2.0-or-later",
    "openclipart": "public domain (CC0)",
}
SOURCE_NAMES = {"user": "your assets", "coco": "your COCO data", "tuxpaint": "Tux Paint", "openclipart": "openclipart"}


class AssetError(ValueError):
    """An asset folder, file or COCO input is unusable; the message is one line naming the path and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Asset:
    """One object cut-out.

    id: stable id ('tuxpaint:household/dishes/mug'); source: user | coco | tuxpaint | openclipart; licence;
    path: the image file (PNG with alpha, or SVG); description: what it shows (a stamp's text, a file name);
    kind: photo | drawing | user; label: the class it was given by the user (folder or COCO category), '' for
    library assets, which are matched by description; folder_words: context from its folders; noflip: the
    stamp must not be mirrored (text, asymmetric signs); alpha_quality: 0..1 once measured (None before).
    """

    id: str
    source: str
    licence: str
    path: str
    description: str
    kind: AssetKind
    label: str = ""
    folder_words: tuple[str, ...] = ()
    noflip: bool = False
    alpha_quality: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the index cache and provenance)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Asset:
        """Inverse of `as_dict`."""
        return cls(**{**data, "folder_words": tuple(data.get("folder_words", ()))})
