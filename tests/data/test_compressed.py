"""xz-compressed CIFAR archives: read directly, decompressed once into the user's cache, never beside the source."""

import lzma
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from sigmab.data import load_split
from sigmab.data.compressed import CACHE_ENV, decompressed_path
from sigmab.errors import DataError
from tests.data.fixtures import write_cifar_npz


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _xz_cifar(folder: Path, name: str = "c.npz.xz", **kwargs) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / "plain.npz"
    arrays = write_cifar_npz(plain, **kwargs)
    (folder / name).write_bytes(lzma.compress(plain.read_bytes()))
    plain.unlink()
    return folder / name, arrays


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "data").iterdir()) if (cache / "data").is_dir() else []


def test_xz_archive_reads_like_the_npz_and_is_decompressed_once(tmp_path, cache, capsys) -> None:
    source, arrays = _xz_cifar(tmp_path / "src")
    train = load_split("cifar10", "train", root=source)
    np.testing.assert_array_equal(train.images.numpy(), arrays["x_train"].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(train.labels.numpy(), arrays["y_train"])
    assert train.source == str(source)  # messages name the file the user gave, not the cache entry
    assert "decompressing" in capsys.readouterr().err
    (entry,) = _entries(cache)
    mtime = entry.stat().st_mtime_ns
    assert len(load_split("cifar10", "test", root=source)) == 10
    assert "decompressing" not in capsys.readouterr().err  # the second read pays nothing
    assert _entries(cache) == [entry] and entry.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["c.npz.xz"]  # nothing written beside it


def test_a_read_only_source_folder_is_fine(tmp_path, cache) -> None:
    source, _ = _xz_cifar(tmp_path / "ro")
    os.chmod(tmp_path / "ro", stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert len(load_split("cifar10", "test", root=source)) == 10
    finally:
        os.chmod(tmp_path / "ro", stat.S_IRWXU)


def test_a_changed_source_is_noticed_and_replaces_its_stale_entry(tmp_path, cache) -> None:
    source, _ = _xz_cifar(tmp_path / "src", n_test=10)
    first = decompressed_path(source, progress=False)
    _xz_cifar(tmp_path / "src", n_test=7)  # same path, new content
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert len(load_split("cifar10", "test", root=source)) == 7
    (entry,) = _entries(cache)
    assert entry != first and not first.exists()


def test_concurrent_first_uses_leave_one_complete_entry(tmp_path, cache) -> None:
    source, arrays = _xz_cifar(tmp_path / "src", n_train=200)
    results: list[Path | Exception] = []

    def read() -> None:
        try:
            results.append(decompressed_path(source, progress=False))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            results.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, Path) for r in results) and len(set(results)) == 1, results
    assert _entries(cache) == [results[0]]  # no temporary file left behind
    with np.load(results[0]) as npz:
        np.testing.assert_array_equal(npz["x_train"], arrays["x_train"])


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b[: len(b) // 2], "truncated xz file"),
    (lambda b: b[:40] + bytes(x ^ 0x55 for x in b[40:80]) + b[80:], "corrupt xz data"),
    (lambda b: b"not xz at all" * 10, "corrupt xz data"),
    (lambda b: lzma.compress(b"plain text, not an npz"), "not an .npz"),
])
def test_a_bad_xz_is_one_clear_error_and_nothing_enters_the_cache(tmp_path, cache, damage, message) -> None:
    source, _ = _xz_cifar(tmp_path / "src")
    source.write_bytes(damage(source.read_bytes()))
    with pytest.raises(DataError, match=message):
        load_split("cifar10", "train", root=source)
    assert _entries(cache) == []


def test_an_unwritable_cache_is_one_clear_error(tmp_path, monkeypatch) -> None:
    source, _ = _xz_cifar(tmp_path / "src")
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "file"))
    with pytest.raises(DataError, match=f"cannot write the data cache.*{CACHE_ENV}"):
        load_split("cifar10", "train", root=source)


def test_a_data_set_with_another_class_count_is_refused(tmp_path, cache) -> None:
    path = tmp_path / "c10.npz"
    arrays = write_cifar_npz(path)
    np.savez(path, **arrays, class_names=np.array([f"c{i}" for i in range(10)]))
    with pytest.raises(DataError, match="holds a 10-class data set, not CIFAR-100"):
        load_split("cifar100", "train", root=path)
