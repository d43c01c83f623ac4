"""Building blocks that keep an export's memory flat however many samples it holds.

- `SortedSpool`: text values under string keys, kept on disk and read back in key order. Keys that arrive in
  ascending order (what `export_all` gives: samples sorted by id) are appended to an anonymous temporary file
  and read back sequentially; the first key out of order moves everything into a private temporary SQLite
  database, which sorts on disk. Either way memory holds one entry at a time.
- `NameSet`: a set of strings on disk (a private temporary SQLite database), for "which files did this export
  write" over millions of files.
- `JsonArray` and `write_json_document`: a JSON array written element by element to an anonymous temporary
  file, then joined with the rest of the document into the final file atomically. The bytes are those of
  `json.dumps(value, ensure_ascii=False) + "\\n"` (`tools.io.atomic_write_json`) for the same value.

Anonymous temporary files vanish with the process, whatever kills it; SQLite's private temporary databases
live in its temporary directory (`SQLITE_TMPDIR`) and are deleted when closed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

COPY_CHUNK = 1 << 20


DATABASE_CACHE_KIB = 512


def _private_database() -> sqlite3.Connection:
    """A private temporary on-disk SQLite database ('' = deleted when closed; pages beyond its 512 KiB cache
    spill to disk), usable from the export's worker threads one call at a time."""
    connection = sqlite3.connect("", check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute(f"PRAGMA cache_size=-{DATABASE_CACHE_KIB}")
    return connection


class DuplicateKeyError(ValueError):
    """A key given to a `SortedSpool` twice."""


class SortedSpool:
    """Text values under unique string keys, read back in key order (see the module docstring).

    Values are single-line text (JSON from `json.dumps` qualifies); keys compare as Python strings (the same
    order as SQLite's binary collation of their UTF-8 bytes).
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._file: IO[bytes] | None = None
        self._database: sqlite3.Connection | None = None
        self._last: str | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, key: str, value: str = "") -> None:
        """Keep `value` under `key`; a key given twice is a `DuplicateKeyError`."""
        if "\n" in value:
            raise ValueError("a spooled value must be a single line")
        if self._database is None and (self._last is None or key > self._last):
            if self._file is None:
                self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115 (closed by close())
            self._file.write(json.dumps(key).encode("utf-8") + b"\t" + value.encode("utf-8") + b"\n")
            self._last = key
            self._count += 1
            return
        if self._database is None and key == self._last:
            raise DuplicateKeyError(f"'{key}' given twice")
        database = self._sorted_database()
        try:
            database.execute("INSERT INTO spool (key, value) VALUES (?, ?)", (key, value))
        except sqlite3.IntegrityError:
            raise DuplicateKeyError(f"'{key}' given twice") from None
        self._count += 1

    def _sorted_database(self) -> sqlite3.Connection:
        """The database, created on the first key out of order with every entry so far moved into it."""
        if self._database is None:
            database = _private_database()
            database.execute("CREATE TABLE spool (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
            database.execute("BEGIN")
            database.executemany("INSERT INTO spool (key, value) VALUES (?, ?)", self._file_items())
            database.execute("COMMIT")
            if self._file is not None:
                self._file.close()
                self._file = None
            self._database = database
        return self._database

    def _file_items(self) -> Iterator[tuple[str, str]]:
        if self._file is None:
            return
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            key, _, value = line.rstrip(b"\n").partition(b"\t")
            yield json.loads(key), value.decode("utf-8")
        self._file.seek(0, os.SEEK_END)

    def items(self) -> Iterator[tuple[str, str]]:
        """(key, value) in ascending key order. Do not add while iterating."""
        if self._database is None:
            yield from self._file_items()
            return
        yield from self._database.execute("SELECT key, value FROM spool ORDER BY key")

    def keys(self) -> Iterator[str]:
        """The keys in ascending order."""
        return (key for key, _ in self.items())

    def close(self) -> None:
        """Free the temporary file or database."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._database is not None:
            self._database.close()
            self._database = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class NameSet:
    """A set of strings kept on disk (membership and insertion only)."""

    def __init__(self) -> None:
        self._database: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._database is None:
            self._database = _private_database()
            self._database.execute("CREATE TABLE names (name TEXT PRIMARY KEY) WITHOUT ROWID")
        return self._database

    def add(self, name: str) -> None:
        """Add a name (again is fine)."""
        self._db().execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (name,))

    def __contains__(self, name: object) -> bool:
        if self._database is None or not isinstance(name, str):
            return False
        return self._database.execute("SELECT 1 FROM names WHERE name = ?", (name,)).fetchone() is not None

    def close(self) -> None:
        """Free the database."""
        if self._database is not None:
            self._database.close()
            self._database = None


class JsonArray:
    """A JSON array written one element at a time to an anonymous temporary file in `folder`."""

    def __init__(self, folder: Path | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (closed by close())
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, value: Any) -> None:
        """Add one element (any JSON value)."""
        text = json.dumps(value, ensure_ascii=False)
        self._file.write((", " + text if self._count else text).encode("utf-8"))
        self._count += 1

    def write_into(self, handle: IO[bytes]) -> None:
        """Write the whole array (brackets included) into `handle`."""
        handle.write(b"[")
        self._file.flush()
        self._file.seek(0)
        shutil.copyfileobj(self._file, handle, COPY_CHUNK)
        self._file.seek(0, os.SEEK_END)
        handle.write(b"]")

    def close(self) -> None:
        """Free the temporary file."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _write_value(handle: IO[bytes], value: Any) -> None:
    if isinstance(value, JsonArray):
        value.write_into(handle)
    elif isinstance(value, Mapping) and any(isinstance(v, JsonArray) for v in value.values()):
        handle.write(b"{")
        for k, (key, item) in enumerate(value.items()):
            handle.write((", " if k else "").encode() + json.dumps(key, ensure_ascii=False).encode("utf-8") + b": ")
            _write_value(handle, item)
        handle.write(b"}")
    else:
        handle.write(json.dumps(value, ensure_ascii=False).encode("utf-8"))


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces `path` atomically when the block ends without an error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_document(path: Path, value: Any) -> None:
    """Atomically write `value` as one line of JSON plus a newline, where `value`, or a value of a mapping in
    it, may be a `JsonArray`: the same bytes as `atomic_write_json` of the value with the arrays' elements."""
    with atomic_output(path) as handle:
        _write_value(handle, value)
        handle.write(b"\n")


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Atomically write one line per string (each followed by a newline), streaming."""
    with atomic_output(path) as handle:
        for line in lines:
            handle.write(line.encode("utf-8") + b"\n")
