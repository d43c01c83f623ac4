"""Extracting an uploaded .zip without trusting it (no web-framework imports: unit-tested directly).

`extract_zip(data, dest, suffixes, limits)` writes the archive's files under `dest` (a new, empty folder) or
raises `UnsafeRequest` with one line naming the first problem, leaving `dest` to the caller to remove:
- not a zip, an encrypted member, a damaged member (CRC) → refused;
- member names: no absolute paths (`/x`, `C:x`), no `..`, `.` or empty components, no backslashes or control
  characters, at most `max_depth` folders deep; every target is resolved and must stay inside `dest`
  (zip slip), and files are created exclusively (a name given twice is refused);
- symlinks and other special files (devices, FIFOs) are refused, never created;
- zip bombs: at most `max_members` members and `max_uncompressed_bytes` in all, by the sizes the archive declares
  and again by counting what is decompressed (a member may not grow past its declared size);
- types: a file's suffix must be in `suffixes`, and images must be PNG or JPEG by their first bytes.
macOS archive metadata (`__MACOSX/…`, `.DS_Store`) is skipped, not extracted.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from synthloop.agent.web.safety import JPEG_MAGIC, PNG_MAGIC, UnsafeRequest

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on an uploaded archive: its own size, its members, what it expands to, how deep it nests."""

    max_bytes: int = 64 * 1024 * 1024
    max_members: int = 5000
    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_depth: int = 8


DEFAULT_ZIP_LIMITS = ZipLimits()


def _is_metadata(parts: tuple[str, ...]) -> bool:
    return parts[0] == "__MACOSX" or parts[-1] == ".DS_Store"


def member_parts(name: str, max_depth: int) -> tuple[str, ...]:
    """The path components of a member name, refused unless it is a plain relative path."""
    shown = name[:120]
    if _CONTROL.search(name) or "\\" in name:
        raise UnsafeRequest(f"zip member {shown!r}: control characters or backslashes in the name", 415)
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeRequest(f"zip member {shown!r}: absolute paths are refused", 415)
    parts = tuple(PurePosixPath(name.rstrip("/")).parts) if name.rstrip("/") else ()
    raw = name.rstrip("/").split("/")
    if not parts or any(p in ("", ".", "..") for p in raw):
        raise UnsafeRequest(f"zip member {shown!r}: '..', '.' or empty path components are refused", 415)
    if len(parts) > max_depth + 1:
        raise UnsafeRequest(f"zip member {shown!r}: nested deeper than {max_depth} folders", 415)
    return parts


def _check_kind(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise UnsafeRequest(f"zip member {info.filename[:120]!r} is a symbolic link: links are refused", 415)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeRequest(f"zip member {info.filename[:120]!r} is not a regular file or folder", 415)
    if info.flag_bits & 0x1:
        raise UnsafeRequest(f"zip member {info.filename[:120]!r} is encrypted", 415)


Member = tuple[zipfile.ZipInfo, tuple[str, ...]]


def _plan(archive: zipfile.ZipFile, suffixes: frozenset[str], limits: ZipLimits) -> list[Member]:
    """The members to extract with their path components, after every check that needs no decompression."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeRequest(f"the zip holds {len(infos)} members; the limit is {limits.max_members}", 413)
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_uncompressed_bytes:
        raise UnsafeRequest(f"the zip expands to {declared} bytes; the limit is {limits.max_uncompressed_bytes} "
                            "(a zip bomb?)", 413)
    files, seen = [], set()
    for info in infos:
        _check_kind(info)
        parts = member_parts(info.filename, limits.max_depth)
        key = tuple(p.lower() for p in parts)  # case-insensitive file systems would merge these
        if key in seen:
            raise UnsafeRequest(f"zip member {info.filename[:120]!r} appears twice", 415)
        seen.add(key)
        if info.is_dir() or _is_metadata(parts):
            continue
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix not in suffixes:
            wanted = ", ".join(sorted(suffixes))
            raise UnsafeRequest(f"zip member {info.filename[:120]!r}: unexpected file type (only {wanted})", 415)
        files.append((info, parts))
    if not files:
        raise UnsafeRequest("the zip holds no files", 415)
    return files


def extract_zip(data: bytes, dest: Path, suffixes: frozenset[str],
                limits: ZipLimits = DEFAULT_ZIP_LIMITS) -> list[Path]:
    """Extract the archive `data` into the empty folder `dest` under the checks of the module docstring; returns
    the files written (relative to `dest`), in archive order."""
    if len(data) > limits.max_bytes:
        raise UnsafeRequest(f"upload too large: {len(data)} bytes, the limit is {limits.max_bytes}", 413)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise UnsafeRequest(f"not a readable zip file ({exc})", 415) from exc
    root = dest.resolve()
    written: list[Path] = []
    total = 0
    with archive:
        for info, parts in _plan(archive, suffixes, limits):
            target = root.joinpath(*parts)
            if not target.resolve().is_relative_to(root):
                raise UnsafeRequest(f"zip member {info.filename[:120]!r} points outside the upload folder", 415)
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            try:
                with archive.open(info) as member, open(target, "xb") as out:
                    while chunk := member.read(CHUNK):
                        if size == 0 and target.suffix.lower() in IMAGE_SUFFIXES and \
                                not chunk.startswith((PNG_MAGIC, JPEG_MAGIC)):
                            raise UnsafeRequest(f"zip member {info.filename[:120]!r} is not a PNG or JPEG image "
                                                "(checked by content, not by name)", 415)
                        size += len(chunk)
                        total += len(chunk)
                        if size > info.file_size or total > limits.max_uncompressed_bytes:
                            raise UnsafeRequest(f"zip member {info.filename[:120]!r} expands past its declared "
                                                "size or the limit (a zip bomb?)", 413)
                        out.write(chunk)
            except UnsafeRequest:
                raise
            except FileExistsError as exc:
                raise UnsafeRequest(f"zip member {info.filename[:120]!r} appears twice", 415) from exc
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
                # a damaged stream or CRC, an unsupported compression method
                raise UnsafeRequest(f"zip member {info.filename[:120]!r} cannot be read ({exc})", 415) from exc
            if size == 0 and target.suffix.lower() in IMAGE_SUFFIXES:
                raise UnsafeRequest(f"zip member {info.filename[:120]!r} is an empty image file", 415)
            written.append(Path(*parts))
    return written
