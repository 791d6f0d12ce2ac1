"""Writing a task library: crash-safe admission and the generation journal.

The directory layout and reading it (manifest, hash-checked sources, metadata, loading into the
registry) are :mod:`envs.library`; this adds what only the generator does::

    journal/attempts.jsonl    every generation attempt and where it stopped (``generate`` only)
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
import json
from pathlib import Path

from envs.core.fileio import Artifact, write_atomic
from envs.library import MANIFEST, LibraryError, LibraryView, load_library, sha256

__all__ = ["Library", "LibraryError", "load_library", "now_iso", "sha256"]


# what a directory must look like before the first admission makes it a library: nothing but
# what a library (or an admission killed before its first manifest) holds
_NEW_LIBRARY = Artifact("task library", ("tasks", "meta", "journal", ".lock", f".{MANIFEST}.tmp-*"))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Library(LibraryView):
    """One library directory, for reading and admitting. Creating the object touches nothing."""

    # -- admitting -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        if self.root.exists() and not (self.root / MANIFEST).exists():
            why = _NEW_LIBRARY.foreign(self.root)
            if why:  # a user's folder: admitting (and its sweep) would write into and delete from it
                raise LibraryError(f"{self.root} is not a task library (no {MANIFEST}) and {why}; "
                                   f"choose a new or empty directory")
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
            if name in manifest["tasks"] and name not in self.damaged():
                raise LibraryError(f"task {name!r} is already in the library")
            # a damaged entry (its file edited or deleted) is replaced: this admission re-gated it
            self._sweep(manifest)
            task_rel, meta_rel = f"tasks/{name}.py", f"meta/{name}.json"
            digest = sha256(source)
            write_atomic(self.root / task_rel, source)
            write_atomic(self.root / meta_rel, json.dumps({**meta, "source_sha256": digest}, indent=1) + "\n")
            manifest["tasks"][name] = {"file": task_rel, "meta": meta_rel, "sha256": digest,
                                       "admitted_at": meta.get("admitted_at", now_iso()),
                                       "generator": meta.get("generator", "")}
            manifest["tasks"] = dict(sorted(manifest["tasks"].items()))
            write_atomic(self.root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        return self.root / task_rel

    def _sweep(self, manifest: dict) -> None:
        """Remove what an interrupted admission left: temp files and files no manifest entry
        names. Only runs inside an admission, so a rejection never changes the directory; and
        only in a directory that has a manifest (one without never had an admission committed)."""
        if not (self.root / MANIFEST).exists():
            return
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
