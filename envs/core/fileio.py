"""Crash-safe writes: a reader sees the old file (or directory) or the whole new one, never half.

Every layer writes files a kill must not corrupt: the task library (envs), policy checkpoints and
exports (policies), demo stores, trainer checkpoints and run configs (train). Imports run one way,
``envs.core`` <- planners <- policies <- train, so the one helper they share lives at the bottom,
here. It needs only the standard library.

The pattern is always the same: write beside the target (same directory, so the same file
system), then ``os.replace`` it into place, which is atomic on POSIX.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator


def _fsync_path(path: Path, directory: bool = False) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (h5py,
    safetensors, ``torch.save``); when the block ends without error the file is flushed to disk
    (``fsync``) and renamed onto ``path``. On error the temporary file is removed and ``path``
    is untouched. The temporary name is hidden and per process: ``.<name>.tmp-<pid>``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        if fsync:
            _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_path(path.parent, directory=True)  # the rename itself


def write_atomic(path: str | os.PathLike, data: str | bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, fsync=fsync) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


def previous_dir(path: str | os.PathLike) -> Path:
    """Where :func:`atomic_dir` (``keep_previous=True``) keeps the previous ``path`` while it swaps
    in the new one: ``<path>.old``. A reader that finds ``path`` missing or incomplete looks here."""
    path = Path(path)
    return path.with_name(path.name + ".old")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, keep_previous: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path`` (``.<name>.tmp``; one left by a writer
    killed earlier is removed first); when the block ends without error it becomes ``path``.
    On error it is removed and ``path`` is untouched.

    An existing ``path`` is replaced whole:

    - ``keep_previous=False``: it is deleted, then the new directory renamed in;
    - ``keep_previous=True`` (checkpoints): it is first renamed to :func:`previous_dir` and deleted
      only once the new one is in place, so a kill at any moment leaves a complete ``path`` or a
      complete ``<path>.old``. A stale ``.old`` is kept until then when ``path`` is missing (it
      is the only complete copy), and replaced otherwise.

    Files inside are not fsynced one by one (checkpoints can be large); the renames are.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_previous:
        old = previous_dir(path)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)
