"""Crash-safe writes: a reader sees the old file (or directory) or the whole new one, never half.

Every layer writes files a kill must not corrupt: the task library (envs), policy checkpoints and
exports (policies), demo stores, trainer checkpoints and run configs (train). Imports run one way,
``envs.core`` <- planners <- policies <- train, so the one helper they share lives at the bottom,
here. It needs only the standard library.

The pattern is always the same: write beside the target (same directory, so the same file
system), then ``os.replace`` it into place, which is atomic on POSIX.

Replacing a whole directory deletes what was there, so :func:`atomic_dir` replaces only a
directory that is recognisably a previous copy of the same artifact (:class:`Artifact`: the
names it may hold and, optionally, a signature such as "its manifest says it is an export").
Anything else (a task library, a user's folder) is refused with :class:`ReplaceRefusedError`.
This is the one place that rule lives; every writer of a whole directory goes through it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable, Iterator


class ReplaceRefusedError(ValueError):
    """A directory was to be replaced whole but is not recognisably a previous copy of what is
    being written; nothing was deleted. The message says what it holds that does not belong."""


@dataclass(frozen=True)
class Artifact:
    """What a directory roboforge writes whole looks like, so a later write replaces only its own.

    ``kind``: said in errors ("policy export"). ``names``: glob patterns of the entries it may
    hold at its top level (anything else there means it is not ours). ``signature``: optional
    check of the directory's content; returns None when it is ours, else why not (one phrase)."""

    kind: str
    names: tuple[str, ...]
    signature: Callable[[Path], str | None] | None = None

    def foreign(self, path: Path) -> str | None:
        """Why ``path`` (an existing, non-empty directory) is not a previous copy, or None."""
        if not path.is_dir():
            return "it is not a directory"
        strangers = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir()
                           if not any(fnmatch(p.name, pat) for pat in self.names))
        if strangers:
            shown = ", ".join(strangers[:5]) + (f" and {len(strangers) - 5} more" if len(strangers) > 5 else "")
            return f"it holds {shown}, which a {self.kind} never holds"
        return self.signature(path) if self.signature else None


def check_replaceable(path: str | os.PathLike, artifact: Artifact) -> None:
    """Raise :class:`ReplaceRefusedError` unless ``path`` is missing, an empty directory, or a
    previous ``artifact`` (see :class:`Artifact`). Call it before doing the work that will
    replace ``path``, so a refusal comes first; :func:`atomic_dir` checks again before deleting."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    why = "it is a symbolic link" if path.is_symlink() else artifact.foreign(path)
    if why:
        raise ReplaceRefusedError(f"refusing to replace {path}: {why}, so it is not a previous {artifact.kind} "
                                  f"and nothing there was deleted; choose a new or empty directory")


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
def atomic_dir(path: str | os.PathLike, artifact: Artifact, *, keep_previous: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path`` (``.<name>.tmp``; one left by a writer
    killed earlier is removed first); when the block ends without error it becomes ``path``.
    On error it is removed and ``path`` is untouched.

    An existing ``path`` is replaced whole, and only when it is empty or a previous ``artifact``
    (:func:`check_replaceable`, run on entry and again just before deleting; a stale ``.old`` and
    a temporary directory left by a killed writer are checked too); otherwise
    :class:`ReplaceRefusedError` is raised and nothing is deleted:

    - ``keep_previous=False``: it is deleted, then the new directory renamed in;
    - ``keep_previous=True`` (checkpoints): it is first renamed to :func:`previous_dir` and deleted
      only once the new one is in place, so a kill at any moment leaves a complete ``path`` or a
      complete ``<path>.old``. A stale ``.old`` is kept until then when ``path`` is missing (it
      is the only complete copy), and replaced otherwise.

    Files inside are not fsynced one by one (checkpoints can be large); the renames are.
    """
    path = Path(path)
    check_replaceable(path, artifact)
    if keep_previous:
        check_replaceable(previous_dir(path), artifact)
    tmp = path.with_name(f".{path.name}.tmp")
    # one left by a writer killed earlier is ours (names only: it may have died before its manifest)
    check_replaceable(tmp, Artifact(artifact.kind, artifact.names))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        check_replaceable(path, artifact)  # it may have changed while the new copy was written
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
