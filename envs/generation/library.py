"""A task library on disk, and loading it into the registry.

Layout of a library directory::

    manifest.json          the commit record: {"version": 1, "tasks": {name: {file, meta, sha256, ...}}}
    tasks/<name>.py        admitted task programs
    meta/<name>.json       per task: gate results, oracle success and seeds, generator, prompt
                           hash, timestamp, embedding
    journal/attempts.jsonl every generation attempt and where it stopped (``generate`` only)
    journal/error_book.jsonl  failures with their gate messages, fed back into LLM prompts

Admission is crash-safe: the task file and its metadata are each written to a temporary file and
``os.replace``d into place, and only then is ``manifest.json`` replaced (the commit point). A
crash at any moment leaves either the old manifest (the new files, if any landed, are orphans
that nothing loads and the next admission sweeps away) or the new one with both files complete.
Only the manifest decides what is in the library. A rejected candidate never touches the
library's files (``admit`` writes nothing on rejection; ``generate`` records rejections only
under ``journal/``).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

MANIFEST = "manifest.json"
VERSION = 1


class LibraryError(RuntimeError):
    """The library on disk is inconsistent, or a task in it conflicts with a registered one."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_atomic(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Library:
    """One library directory. Creating the object touches nothing on disk."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # -- reading -------------------------------------------------------------------------------
    def manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.exists():
            return {"version": VERSION, "tasks": {}}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise LibraryError(f"{path} is unreadable: {err}") from None
        if data.get("version") != VERSION or not isinstance(data.get("tasks"), dict):
            raise LibraryError(f"{path} is not a roboforge library manifest (version {VERSION})")
        return data

    def names(self) -> list[str]:
        return sorted(self.manifest()["tasks"])

    def source(self, name: str) -> str:
        entry = self._entry(name)
        text = (self.root / entry["file"]).read_text(encoding="utf-8")
        if sha256(text) != entry["sha256"]:
            raise LibraryError(f"{self.root / entry['file']} does not match the manifest's sha256 "
                               "(edited after admission?); re-admit it with `admit`")
        return text

    def meta(self, name: str) -> dict:
        return json.loads((self.root / self._entry(name)["meta"]).read_text(encoding="utf-8"))

    def _entry(self, name: str) -> dict:
        try:
            return self.manifest()["tasks"][name]
        except KeyError:
            raise LibraryError(f"task {name!r} is not in the library at {self.root}") from None

    # -- admitting -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def admit(self, name: str, source: str, meta: dict) -> Path:
        """Add a validated task: task file, then metadata, then the manifest (commit)."""
        with self._locked():
            manifest = self.manifest()
            if name in manifest["tasks"]:
                raise LibraryError(f"task {name!r} is already in the library")
            self._sweep(manifest)
            task_rel, meta_rel = f"tasks/{name}.py", f"meta/{name}.json"
            digest = sha256(source)
            _write_atomic(self.root / task_rel, source)
            _write_atomic(self.root / meta_rel, json.dumps({**meta, "source_sha256": digest}, indent=1) + "\n")
            manifest["tasks"][name] = {"file": task_rel, "meta": meta_rel, "sha256": digest,
                                       "admitted_at": meta.get("admitted_at", now_iso()),
                                       "generator": meta.get("generator", "")}
            manifest["tasks"] = dict(sorted(manifest["tasks"].items()))
            _write_atomic(self.root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        return self.root / task_rel

    def _sweep(self, manifest: dict) -> None:
        """Remove what an interrupted admission left: temp files and files no manifest entry
        names. Only runs inside an admission, so a rejection never changes the directory."""
        listed = {v["file"] for v in manifest["tasks"].values()} | {v["meta"] for v in manifest["tasks"].values()}
        for sub in ("tasks", "meta"):
            d = self.root / sub
            if not d.is_dir():
                continue
            for p in d.iterdir():
                if p.is_file() and f"{sub}/{p.name}" not in listed:
                    p.unlink()
        for p in self.root.glob(f".{MANIFEST}.tmp-*"):
            p.unlink()

    def orphans(self) -> list[str]:
        """Files in tasks/ or meta/ that the manifest does not list (left by a crash)."""
        manifest = self.manifest()
        listed = {v["file"] for v in manifest["tasks"].values()} | {v["meta"] for v in manifest["tasks"].values()}
        return sorted(f"{sub}/{p.name}" for sub in ("tasks", "meta") if (self.root / sub).is_dir()
                      for p in (self.root / sub).iterdir() if f"{sub}/{p.name}" not in listed)

    # -- the generation journal ------------------------------------------------------------------
    def journal_append(self, kind: str, record: dict) -> None:
        """Append one JSON line to journal/<kind>.jsonl ("attempts" or "error_book")."""
        path = self.root / "journal" / f"{kind}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def journal(self, kind: str) -> list[dict]:
        path = self.root / "journal" / f"{kind}.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a torn last line after a crash
                out.append(json.loads(line))
        return out


def load_library(root: str | os.PathLike) -> list[str]:
    """Register every task of the library at ``root`` as ``roboforge/<name>-v0``; return their
    names. Each file must match its manifest hash and pass the static gate again (cheap), so a
    file edited or planted after admission is refused, not run."""
    from envs.generation.static import check_source
    from envs.registry import get_task, list_tasks

    lib = Library(root)
    if not lib.root.is_dir():
        raise FileNotFoundError(f"no task library at {lib.root}")
    names = []
    for name in lib.names():
        source = lib.source(name)
        report = check_source(source)
        if not report.ok or report.task_name != name:
            raise LibraryError(f"library task {name!r} fails the static gate on load: {report.reason or 'name mismatch'}")
        path = (lib.root / lib.manifest()["tasks"][name]["file"]).resolve()
        if name in list_tasks():
            existing = inspect.getfile(get_task(name))
            if Path(existing).resolve() != path:
                raise LibraryError(f"library task {name!r} conflicts with the registered task from {existing}")
        module_name = f"roboforge_library_{sha256(str(lib.root.resolve()))[:8]}_{name}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # so inspect (and task_source_hash) can find its source
        spec.loader.exec_module(module)
        names.append(name)
    return names
