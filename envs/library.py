"""Loading a generated-task library into the registry (the task generation pipeline, which
writes libraries, lives above planners in :mod:`generation`; this is all envs needs to *use* one).

Layout of a library directory::

    manifest.json          the commit record: {"version": 1, "tasks": {name: {file, meta, sha256, ...}}}
    tasks/<name>.py        admitted task programs
    meta/<name>.json       per task: gate results, oracle success and seeds, generator, prompt
                           hash, timestamp, embedding
    journal/               the generator's own records (see generation.library); not read here

Only the manifest decides what is in the library. Loading re-checks each file's sha256 against
the manifest and runs the static gate (:mod:`envs.static_check`) again, so a file edited or planted
after admission is refused rather than run: that task is skipped (a warning names it and says
why; :meth:`LibraryView.damaged` lists them) and the rest of the library loads. A manifest that
is not a library manifest (bad JSON, wrong shape, an entry without its fields) is a
:class:`LibraryError` naming what is wrong.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERSION = 1


class LibraryError(RuntimeError):
    """The library on disk is inconsistent, or a task in it conflicts with a registered one."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class LibraryView:
    """Read access to one library directory. Creating the object touches nothing on disk."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.exists():
            return {"version": VERSION, "tasks": {}}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LibraryError(f"{path} is unreadable: {err}") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("tasks"), dict):
            raise LibraryError(f"{path} is not a roboforge library manifest "
                               f'({{"version": {VERSION}, "tasks": {{...}}}} expected)')
        for name, entry in data["tasks"].items():
            missing = [k for k in ("file", "meta", "sha256") if not isinstance(entry, dict) or
                       not isinstance(entry.get(k), str)]
            if missing:
                raise LibraryError(f"{path}: the entry for task {name!r} lacks {', '.join(missing)}; "
                                   f"the manifest was edited or damaged")
        return data

    def names(self) -> list[str]:
        return sorted(self.manifest()["tasks"])

    def source(self, name: str) -> str:
        """The task's program, refused if it no longer matches the manifest's hash."""
        entry = self._entry(name)
        try:
            text = (self.root / entry["file"]).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise LibraryError(f"{self.root / entry['file']} is missing (deleted after admission?); admit the "
                               f"task again with `python -m generation admit`") from None
        except (OSError, UnicodeDecodeError) as err:
            raise LibraryError(f"{self.root / entry['file']} is unreadable: {err}") from None
        if sha256(text) != entry["sha256"]:
            raise LibraryError(f"{self.root / entry['file']} does not match the manifest's sha256 "
                               "(edited after admission?); re-admit it with `python -m generation admit`")
        return text

    def path(self, name: str) -> Path:
        return self.root / self._entry(name)["file"]

    def meta(self, name: str) -> dict:
        path = self.root / self._entry(name)["meta"]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise LibraryError(f"{path} is unreadable: {err}") from None
        if not isinstance(data, dict):
            raise LibraryError(f"{path} is not a task's metadata record")
        return data

    def damaged(self) -> dict[str, str]:
        """Tasks of the manifest whose files no longer load (edited, deleted): name -> why."""
        out = {}
        for name in self.names():
            try:
                self.source(name)
                self.meta(name)
            except LibraryError as err:
                out[name] = str(err)
        return out

    def usable_names(self) -> list[str]:
        """:meth:`names` less :meth:`damaged`."""
        bad = self.damaged()
        return [n for n in self.names() if n not in bad]

    def _entry(self, name: str) -> dict:
        try:
            return self.manifest()["tasks"][name]
        except KeyError:
            raise LibraryError(f"task {name!r} is not in the library at {self.root}") from None


def load_library(root: str | os.PathLike) -> list[str]:
    """Register every task of the library at ``root`` as ``roboforge/<name>-v0``; return their
    names. Each file must match its manifest hash and pass the static gate again (cheap), so a
    file edited or planted after admission is refused, not run."""
    from envs.registry import get_task, list_tasks
    from envs.static_check import check_source

    lib = LibraryView(root)
    if not lib.root.is_dir():
        raise FileNotFoundError(f"no task library at {lib.root}")
    names = []
    for name in lib.names():
        try:
            source = lib.source(name)
        except LibraryError as err:  # one edited or deleted file does not take the library down
            log.warning("skipping library task %r: %s", name, err)
            continue
        report = check_source(source)
        if not report.ok or report.task_name != name:
            log.warning("skipping library task %r: it fails the static gate on load: %s", name,
                        report.reason or "name mismatch")
            continue
        path = lib.path(name).resolve()
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
