"""Atomic file writes: a reader sees the old file or the new one, never half of either, and
once the write returns, a power cut keeps the new one (fsync of the file and its directory)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fresh_name(parent: Path, prefix: str, suffix: str) -> Path:
    return parent / f"{prefix}{secrets.token_hex(6)}{suffix}"


def _create_file(parent: Path, prefix: str, suffix: str) -> Path:
    """A new empty file with the mode a plain ``open(path, "w")`` gives it: the kernel applies
    the umask. (``mkstemp`` makes it 0600, and reading the umask means setting it, which
    races with every other thread of the process.)"""
    while True:
        path = _fresh_name(parent, prefix, suffix)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def make_dir_beside(path: Path, tag: str) -> Path:
    """A new directory in ``path``'s folder named ``.NAME.TAG-<random>``, with the mode a plain
    ``mkdir`` gives (``mkdtemp`` makes it 0700, and it would keep that once renamed)."""
    while True:
        tmp = _fresh_name(path.parent, f".{path.name}.", f".{tag}")
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def fsync_file(path: Path) -> None:
    """Flush a file's data to the disk (it was written and closed by whoever wrote it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename or a new file in it) to the disk."""
    if sys.platform == "win32":
        return  # directories cannot be opened there; NTFS journals renames itself
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path, files: bool = True) -> None:
    """fsync every directory under ``root`` (``root`` last), and every file unless ``files`` is
    False (the writer flushed them already)."""
    for here, _dirs, names in os.walk(root, topdown=False):
        for name in names if files else ():
            fsync_file(Path(here) / name)
        fsync_dir(Path(here))


@contextlib.contextmanager
def atomic_path(path: Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` in one step.

    ``durable=False`` skips the two fsyncs (about 10 ms a file on a disk), for files that are
    cheap to make again (synthetic clips), never for a corpus's or a study's own files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_file(path.parent, f".{path.name}.", ".tmp")
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


_RENAME_EXCHANGE = 2  # linux/fs.h's RENAME_EXCHANGE; macOS's RENAME_SWAP has the same value
_AT_FDCWD = -100


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # no C library to open by name (Windows)
        return None


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``, macOS ``renamex_np``): a
    reader sees either both old or both new. False where the system or the file system cannot
    (the caller falls back to two renames)."""
    libc, fa, fb = _libc(), os.fsencode(a), os.fsencode(b)
    if libc is not None and hasattr(libc, "renameat2"):
        rc = libc.renameat2(_AT_FDCWD, fa, _AT_FDCWD, fb, _RENAME_EXCHANGE)
    elif libc is not None and hasattr(libc, "renamex_np"):
        rc = libc.renamex_np(fa, fb, _RENAME_EXCHANGE)
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


@contextlib.contextmanager
def atomic_dir(path: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success rename it to ``path``.

    With ``replace=False`` (derived data such as caches), if another process finished the
    same directory first, its copy is kept and ours dropped. With ``replace=True`` an existing
    ``path`` is swapped out for the new one (in one step where the system can; the old one is
    then removed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_dir_beside(path, "tmp")
    try:
        yield tmp
        fsync_tree(tmp)
        if replace and path.exists():
            if not exchange(tmp, path):
                old = make_dir_beside(path, "old")
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                tmp = old
        else:
            with contextlib.suppress(OSError):
                os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
