"""di_nas.io: atomic writes leave the old or the new file, JSON reads, directory replacement."""

import os

import pytest

from di_nas import io as dio


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "m.json")
    dio.atomic_write_json(path, {"b": 1, "a": [1, 2]})
    assert open(path).read() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    dio.atomic_write_json(path, {"a": 2}, compact=True)
    assert dio.read_json(path) == {"a": 2} and os.listdir(tmp_path) == ["m.json"]
    assert dio.read_json(str(tmp_path / "absent.json")) is None


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "f.txt")
    dio.atomic_write_text(path, "old")

    def crash(src, dst):
        raise KeyboardInterrupt  # killed between writing the temporary file and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        dio.atomic_write_text(path, "new")
    monkeypatch.undo()
    assert dio.read_text(path) == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_numpy_scalars_are_written_as_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    path = str(tmp_path / "n.json")
    dio.atomic_write_json(path, {"x": np.float32(0.5), "n": np.int64(3)})
    assert dio.read_json(path) == {"x": 0.5, "n": 3}


def test_replace_dir_and_remove(tmp_path):
    new, path = tmp_path / "new", tmp_path / "export"
    for d, name in ((new, "b"), (path, "a")):
        d.mkdir()
        (d / name).write_text(name)
    dio.replace_dir(str(new), str(path))
    assert os.listdir(path) == ["b"] and sorted(os.listdir(tmp_path)) == ["export"]
    dio.remove(str(path))
    dio.remove(str(path))  # absent: nothing happens
    assert not path.exists()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
