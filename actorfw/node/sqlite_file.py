"""The file of a node's store: opening it, and refusing any file that is not one.

A store is one SQLite database in WAL mode with ``PRAGMA synchronous=FULL``
(see :mod:`actorfw.node.storage` for why), one table ``kv``, and marks that
say it is an actorfw store of a given layout: ``PRAGMA application_id`` and
``user_version``. A new file is created with those; an existing one is
identified before anything is written to it, so a foreign database, a
store of a newer layout or a damaged schema is refused untouched, with a
message that names the file and says what to do.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

from actorfw.values.errors import ActorfwError

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_FILENAME",
    "SCHEMA_VERSION",
    "Layer",
    "StorageError",
    "check_item",
    "check_namespace",
    "commit_layer",
    "connect",
    "open_store",
]

DEFAULT_FILENAME: Final = "storage.sqlite3"
"""The conventional name of a node's store in its data directory: ``<data_dir>/storage.sqlite3``."""

SCHEMA_VERSION: Final = 1
"""The layout this module writes (``PRAGMA user_version`` of the file)."""

APPLICATION_ID: Final = 0x61637466  # "actf": marks the file as an actorfw store
BUSY_TIMEOUT: Final = 5.0  # seconds SQLite retries a lock held by another connection
JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024  # truncate the WAL back to this after a checkpoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID
"""
_COLUMNS = [("namespace", "TEXT"), ("key", "BLOB"), ("value", "BLOB")]
_PUT = "INSERT OR REPLACE INTO kv (namespace, key, value) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM kv WHERE namespace = ? AND key = ?"

Layer = dict[str, dict[bytes, bytes | None]]
"""Writes by namespace and key, newest value of each, None for a delete."""


class StorageError(ActorfwError):
    """The node's durable store failed: its file is not a usable store, or a commit failed.

    The message names the file. A failed commit leaves its writes pending
    (still visible to reads) and the next ``sync()`` retries them.
    """


def connect(path: Path, check_same_thread: bool) -> sqlite3.Connection:
    """A connection to the store at ``path`` (transactions explicit).

    Raises:
        StorageError: SQLite cannot open it.
    """
    try:
        return sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,  # autocommit: transactions are explicit
            check_same_thread=check_same_thread,
        )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the storage file {str(path)!r}: {exc}") from exc


def open_store(path: Path, created_dirs: list[Path]) -> sqlite3.Connection:
    """The writing connection to the store at ``path``, its schema checked or created.

    Called on the thread that will write through it. The file is identified
    before anything is written to it, so a foreign database is refused
    untouched. ``created_dirs`` are the directories made for the file
    (outermost last): their entries are made durable with the file's.

    Raises:
        StorageError: the file is not a usable store (see :class:`StorageError`).
    """
    existed = path.exists()
    conn = connect(path, check_same_thread=True)
    try:
        _prepare(conn, path, existed, created_dirs)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, existed: bool, created_dirs: list[Path]) -> None:
    name = repr(str(path))
    try:
        app_id, version, tables = _identify(conn)
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"the storage file {name} is corrupted or not a SQLite database ({exc}); "
            "move it aside (or restore it from a replica or a backup), or give the node "
            "another path"
        ) from exc
    fresh = app_id == 0 and version == 0 and not tables
    if not fresh:
        _check_identity(conn, path, app_id, version, tables)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(
            f"the storage file {name} cannot use SQLite's WAL mode (journal mode stays "
            f"{mode!r}); put it on a local file system that supports shared memory maps"
        )
    conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every COMMIT
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    if fresh:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if not existed:
        # Make the new file's directory entry (and those of the directories
        # created for it) durable; SQLite syncs the directory for the -wal
        # file it creates, not for the main file.
        for directory in [path.parent, *(d.parent for d in created_dirs)]:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _identify(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    """The file's application id, layout version and table names (reads only)."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
        ).fetchall()
    ]
    return app_id, version, tables


def _check_identity(
    conn: sqlite3.Connection, path: Path, app_id: int, version: int, tables: list[str]
) -> None:
    """Refuse a database that is not an actorfw store of a layout this code reads."""
    name = repr(str(path))
    if app_id != APPLICATION_ID:
        raise StorageError(
            f"the storage file {name} is a SQLite database but not an actorfw store "
            f"(application_id {app_id:#x}, tables {tables}); give the node a path of its own"
        )
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the storage file {name} has layout version {version}, newer than this "
            f"actorfw's {SCHEMA_VERSION}; run it with the actorfw that wrote it"
        )
    columns = [
        (row[1], str(row[2]).upper()) for row in conn.execute("PRAGMA table_info(kv)").fetchall()
    ]
    if columns != _COLUMNS:
        raise StorageError(
            f"the storage file {name} is an actorfw store with a damaged schema (table kv "
            f"has columns {columns}, expected {_COLUMNS}); restore it from a replica or a "
            "backup"
        )


def check_namespace(namespace: object) -> None:
    """Refuse a namespace that is not text the file can hold.

    Raises:
        TypeError: it is not a str, or not valid UTF-8 text.
    """
    if not isinstance(namespace, str):
        raise TypeError(f"a storage namespace must be a str, not {type(namespace).__name__}")
    try:
        namespace.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TypeError(
            f"the storage namespace {namespace!r} is not valid UTF-8 text: {exc}"
        ) from None


def check_item(key: object, value: object) -> None:
    """Refuse a key that is not bytes, or a value that is neither bytes nor None (a delete).

    Raises:
        TypeError: saying to write through ``backend.namespace(name)``, which converts.
    """
    if type(key) is not bytes:
        raise TypeError(
            f"a backend key must be bytes, not {type(key).__name__}; write through "
            "backend.namespace(name), whose Storage view converts str keys"
        )
    if value is not None and type(value) is not bytes:
        raise TypeError(
            f"a backend value must be bytes or None, not {type(value).__name__}; write "
            "through backend.namespace(name), whose Storage view converts values"
        )


def commit_layer(
    conn: sqlite3.Connection, layer: Layer, before_commit: Callable[[int], None] | None
) -> None:
    """Write ``layer`` in one transaction; returns once it is durable (WAL, synchronous=FULL).

    ``before_commit`` is called first with the number of keys written. On
    any failure the transaction is rolled back and the error raised.
    """
    puts = [
        (namespace, key, value)
        for namespace, space in layer.items()
        for key, value in space.items()
        if value is not None
    ]
    deletes = [
        (namespace, key)
        for namespace, space in layer.items()
        for key, value in space.items()
        if value is None
    ]
    if before_commit is not None:
        before_commit(len(puts) + len(deletes))
    conn.execute("BEGIN IMMEDIATE")
    try:
        if puts:
            conn.executemany(_PUT, puts)
        if deletes:
            conn.executemany(_DELETE, deletes)
        conn.execute("COMMIT")  # WAL + synchronous=FULL: returns after the fsync
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite may already have rolled back; the commit failed either way
        raise
