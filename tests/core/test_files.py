"""The one atomic writer: whole files or nothing, and modes others can read."""

import contextlib
import os
import stat

import pytest

from keras_lstm.core import files


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_and_folders_get_the_modes_the_umask_gives(tmp_path, mask):
    with umask(mask):
        assert files.current_umask() == mask
        text = files.atomic_write_text(tmp_path / "a" / "config.json", "{}\n")
        data = files.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
        copy = files.atomic_copy(text, tmp_path / "copy.json")
        with files.atomic_output(tmp_path / "scored.jsonl", sync=True) as handle:
            handle.write("{}\n")
        with files.atomic_path(tmp_path / "model.weights.h5") as tmp:
            assert tmp.name.endswith(".weights.h5") and tmp.parent == tmp_path
            tmp.write_bytes(b"h5")
        with files.atomic_directory(tmp_path / "export") as work:
            (work / "model.onnx").write_bytes(b"onnx")
    for path in (text, data, copy, tmp_path / "scored.jsonl", tmp_path / "model.weights.h5"):
        assert mode(path) == 0o666 & ~mask, path
    assert mode(tmp_path / "export") == 0o777 & ~mask
    assert (tmp_path / "export" / "model.onnx").read_bytes() == b"onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "b.bin", "copy.json", "export", "model.weights.h5", "scored.jsonl"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = files.atomic_write_text(tmp_path / "best_score.json", "old")
    with pytest.raises(RuntimeError), files.atomic_output(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["best_score.json"]


def test_a_failed_folder_leaves_the_old_folder(tmp_path):
    with files.atomic_directory(tmp_path / "export") as work:
        (work / "v1").write_text("1")
    with pytest.raises(KeyboardInterrupt), files.atomic_directory(tmp_path / "export") as work:
        (work / "v2").write_text("2")
        raise KeyboardInterrupt
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["v1"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    with files.atomic_directory(tmp_path / "export") as work:
        (work / "v3").write_text("3")
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["v3"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_the_umask_is_read_without_being_changed():
    with umask(0o027):
        assert files.current_umask() == 0o027
        assert os.umask(0o027) == 0o027
