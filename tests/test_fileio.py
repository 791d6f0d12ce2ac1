"""The one atomic-write helper: a crash mid-write leaves the old file or directory, never half."""
import os

import pytest

from envs.core.fileio import Artifact, ReplaceRefusedError, atomic_dir, atomic_file, previous_dir, write_atomic

STEP = Artifact("test artifact", ("step", "first", "second", "third"))


def _crash_on_replace(monkeypatch, nth: int = 1):
    """os.replace raises on its ``nth`` call, as if the process died there."""
    real, calls = os.replace, {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == nth:
            raise OSError("simulated crash")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", replace)


def test_write_atomic_replaces_whole_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "manifest.json"
    write_atomic(path, "old")
    write_atomic(path, b"new")
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    _crash_on_replace(monkeypatch)
    with pytest.raises(OSError, match="simulated crash"):
        write_atomic(path, "newer")
    assert path.read_text() == "new" and os.listdir(path.parent) == ["manifest.json"]


def test_atomic_dir_replaces_a_directory_whole(tmp_path):
    out = tmp_path / "export"
    for text in ("first", "second"):
        with atomic_dir(out, STEP) as tmp:
            (tmp / text).write_text(text)
    assert os.listdir(out) == ["second"] and sorted(os.listdir(tmp_path)) == ["export"]
    with pytest.raises(RuntimeError):
        with atomic_dir(out, STEP) as tmp:
            (tmp / "third").write_text("third")
            raise RuntimeError("export check failed")
    assert os.listdir(out) == ["second"] and sorted(os.listdir(tmp_path)) == ["export"]


def test_checkpoint_swap_killed_midway_leaves_the_previous_copy_readable(tmp_path, monkeypatch):
    ckpt = tmp_path / "last"
    with atomic_dir(ckpt, STEP, keep_previous=True) as tmp:
        (tmp / "step").write_text("10")
    _crash_on_replace(monkeypatch, nth=2)  # `last` moved to `last.old`; the new one never moved in
    with pytest.raises(OSError, match="simulated crash"):
        with atomic_dir(ckpt, STEP, keep_previous=True) as tmp:
            (tmp / "step").write_text("20")
    assert not ckpt.exists() and (previous_dir(ckpt) / "step").read_text() == "10"
    monkeypatch.undo()
    with atomic_dir(ckpt, STEP, keep_previous=True) as tmp:  # the next save: `.old` stays until `last` is back
        (tmp / "step").write_text("30")
    assert (ckpt / "step").read_text() == "30" and sorted(os.listdir(tmp_path)) == ["last"]


def test_atomic_dir_never_deletes_a_directory_it_does_not_recognise(tmp_path):
    """Whatever calls it (export, checkpoints), a directory holding anything the artifact never
    holds is refused before and after the new copy is written, and nothing is deleted."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(ReplaceRefusedError, match="thesis.tex, which a test artifact never holds"):
        with atomic_dir(out, STEP) as tmp:
            (tmp / "step").write_text("1")
    assert os.listdir(out) == ["thesis.tex"] and sorted(os.listdir(tmp_path)) == ["out"]
    # it became someone else's while the new copy was being written
    with pytest.raises(ReplaceRefusedError, match="thesis.tex"):
        with atomic_dir(tmp_path / "b", STEP) as tmp:
            (tmp_path / "b").mkdir()
            (tmp_path / "b" / "thesis.tex").write_text("mine")
    assert os.listdir(tmp_path / "b") == ["thesis.tex"]
    # a stale `.old` that is not ours is not deleted either
    (tmp_path / "c.old").mkdir()
    (tmp_path / "c.old" / "thesis.tex").write_text("mine")
    with pytest.raises(ReplaceRefusedError, match="c.old"):
        with atomic_dir(tmp_path / "c", STEP, keep_previous=True):
            pass
    assert os.listdir(tmp_path / "c.old") == ["thesis.tex"]
    signed = Artifact("signed artifact", ("step",), lambda p: None if (p / "step").read_text() == "ok" else "unsigned")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "step").write_text("user")
    with pytest.raises(ReplaceRefusedError, match="unsigned"):
        with atomic_dir(tmp_path / "d", signed):
            pass
    # a temporary copy left by a killed writer (names only, no signature yet) does not block the next write
    (tmp_path / ".e.tmp").mkdir()
    (tmp_path / ".e.tmp" / "step").write_text("half")
    with atomic_dir(tmp_path / "e", signed) as tmp:
        (tmp / "step").write_text("ok")
    assert (tmp_path / "e" / "step").read_text() == "ok" and not (tmp_path / ".e.tmp").exists()
