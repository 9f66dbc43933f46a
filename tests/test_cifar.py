"""CIFAR fetch and load on small format-exact archives served from 127.0.0.1, the dataset
registry (labels, grayscale, resolve_dataset), and batch augmentation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cifar_archives import make_tiny_cifar10, make_tiny_cifar100

from lowrank.data import images
from lowrank.data.augment import crop_flip, random_crop_flip
from lowrank.data.cifar import CIFAR10, CIFAR100, MANIFEST, fetch_cifar, load_cifar
from lowrank.data.images import LOADERS, manifest_path, resolve_dataset
from lowrank.errors import UserError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny10(tmp_path_factory):
    return make_tiny_cifar10(tmp_path_factory.mktemp("cifar10_served"))


@pytest.fixture(scope="module")
def tiny100(tmp_path_factory):
    return make_tiny_cifar100(tmp_path_factory.mktemp("cifar100_served"))


def sources(*bases, archive="cifar-10-python.tar.gz"):
    return [{"name": f"src{i}", "url": base + archive} for i, base in enumerate(bases)]


def test_official_specs_carry_torchvisions_sums():
    assert CIFAR10.md5 == "c58f30108f718f92721af3b95e74349a"
    assert CIFAR100.md5 == "eb9058c3a382ffc7106e4002c42a8d85"
    assert (CIFAR10.n_train, CIFAR10.n_val, CIFAR10.n_test) == (45_000, 5_000, 10_000)


def test_fetch_verifies_and_writes_a_manifest(tmp_path, serve, tiny10):
    base = serve(tiny10.archive.parent)
    manifest = fetch_cifar("cifar10", tmp_path, sources(base), tiny10.spec, timeout=5)
    stored = tmp_path / "cifar10" / CIFAR10.archive
    assert stored.read_bytes() == tiny10.archive.read_bytes()
    assert manifest["source"].startswith("src0") and manifest["failed_sources"] == []
    assert manifest["files"][CIFAR10.archive]["md5"] == tiny10.spec.md5
    assert manifest["files"][CIFAR10.archive]["bytes"] == stored.stat().st_size
    assert json.loads((tmp_path / "cifar10" / MANIFEST).read_text()) == manifest
    assert manifest["checksum"] == f"md5:{tiny10.spec.md5} (cifar-10-python.tar.gz)"


def test_a_404_falls_back_to_the_mirror(tmp_path, serve, tiny10):
    empty = tmp_path / "empty"
    empty.mkdir()
    srcs = sources(serve(empty), serve(tiny10.archive.parent))
    manifest = fetch_cifar("cifar10", tmp_path / "d", srcs, tiny10.spec, timeout=5)
    assert manifest["source"].startswith("src1")
    assert manifest["failed_sources"] == ["src0: HTTP 404"]


def test_checksum_mismatch_leaves_nothing_and_is_one_line(tmp_path, serve, tiny10):
    wrong = tiny10.spec.__class__(**{**tiny10.spec.__dict__, "md5": "0" * 32})
    with pytest.raises(UserError) as info:
        fetch_cifar("cifar10", tmp_path, sources(serve(tiny10.archive.parent)), wrong, timeout=5)
    message = str(info.value)
    assert "checksum mismatch" in message and "src0" in message and "\n" not in message
    assert list((tmp_path / "cifar10").iterdir()) == []  # no archive, temp file or manifest


def test_prepopulated_dir_is_verified_and_used_offline(tmp_path, tiny10):
    (tmp_path / "cifar10").mkdir()
    shutil.copy(tiny10.archive, tmp_path / "cifar10")
    dead = [{"name": "nowhere", "url": "http://127.0.0.1:9/cifar-10-python.tar.gz"}]
    manifest = fetch_cifar("cifar10", tmp_path, dead, tiny10.spec, timeout=5)
    assert manifest["source"] == "pre-populated data_dir" and manifest["failed_sources"] == []
    # a corrupt pre-populated archive is a one-line error naming the file, never replaced
    (tmp_path / "cifar10" / CIFAR10.archive).write_bytes(b"not cifar")
    with pytest.raises(UserError, match=r"cifar-10-python\.tar\.gz: checksum mismatch"):
        fetch_cifar("cifar10", tmp_path, dead, tiny10.spec, timeout=5)
    assert (tmp_path / "cifar10" / CIFAR10.archive).read_bytes() == b"not cifar"


def test_cli_fetch_without_network_is_one_line(tmp_path, capsys):
    from lowrank.cli import main

    (tmp_path / "workflow/schemas").mkdir(parents=True)
    shutil.copy(REPO / "workflow/schemas/params.schema.yaml", tmp_path / "workflow/schemas")
    # sources replaced by a closed local port: no internet needed, still the real CLI path
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["cifar100"]["sources"] = [
        {"name": "closed port", "url": "http://127.0.0.1:9/cifar-100-python.tar.gz"}
    ]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["fetch", "cifar100", "--params", str(tmp_path / "params.yaml")]
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "closed port" in err and "cifar-100-python.tar.gz into" in err
    assert not (tmp_path / "data/cifar100" / MANIFEST).exists()


def test_loading_gives_the_exact_pixels_labels_and_split(tmp_path, tiny10):
    (tmp_path / "cifar10").mkdir()
    shutil.copy(tiny10.archive, tmp_path / "cifar10")
    fetch_cifar("cifar10", tmp_path, [], tiny10.spec)
    a = load_cifar("cifar10", tmp_path, tiny10.spec)
    rows = np.concatenate([b[b"data"] for b in tiny10.train])
    labels = sum((b[b"labels"] for b in tiny10.train), [])
    assert a.train_x.shape == (40, 3, 32, 32) and a.val_x.shape == (10, 3, 32, 32)
    assert a.test_x.shape == (10, 3, 32, 32)
    # channel order: a CIFAR row is 1024 red values, then 1024 green, then 1024 blue
    n, i, j = 7, 5, 9
    assert a.train_x[n, 0, i, j] == rows[n, 32 * i + j]
    assert a.train_x[n, 1, i, j] == rows[n, 1024 + 32 * i + j]
    assert a.train_x[n, 2, i, j] == rows[n, 2048 + 32 * i + j]
    assert np.array_equal(a.train_x.reshape(40, -1), rows[:40])  # train = first images
    assert np.array_equal(a.val_x.reshape(10, -1), rows[40:])  # validation = last images
    assert a.train_y.tolist() == labels[:40] and a.val_y.tolist() == labels[40:]
    assert np.array_equal(a.test_x.reshape(10, -1), tiny10.test[b"data"])
    assert a.test_y.tolist() == tiny10.test[b"labels"]
    assert a.classes[0] == "airplane" and len(a.classes) == 10

    s = images._cifar(tmp_path, "cifar10", tiny10.spec)
    assert s.train_x.dtype == torch.float32 and s.num_classes == 10 and s.shape == (3, 32, 32)
    assert torch.equal(s.train_x, torch.from_numpy(a.train_x).float() / 255)
    assert s.train_x.max() <= 1 and s.train_x.min() >= 0
    assert s.label == "CIFAR-10 (real data)" and s.checksum.startswith(f"md5:{tiny10.spec.md5}")
    assert s.train_y.dtype == torch.int64


def test_cifar100_uses_fine_labels(tmp_path, serve, tiny100):
    base = serve(tiny100.archive.parent)
    srcs = sources(base, archive="cifar-100-python.tar.gz")
    fetch_cifar("cifar100", tmp_path, srcs, tiny100.spec, timeout=5)
    s = images._cifar(tmp_path, "cifar100", tiny100.spec)
    assert s.num_classes == 100 and s.label.startswith("CIFAR-100 (real data")
    assert s.train_y.tolist() + s.val_y.tolist() == tiny100.train[0][b"fine_labels"]
    assert s.test_y.tolist() == tiny100.test[b"fine_labels"]
    raw = tiny100.train[0][b"data"].reshape(-1, 3, 32, 32)
    assert torch.equal(s.val_x, torch.from_numpy(raw[40:]).float() / 255)


def test_grayscale_is_itu_r_601_2_luma(tmp_path, tiny10):
    (tmp_path / "cifar10").mkdir()
    shutil.copy(tiny10.archive, tmp_path / "cifar10")
    fetch_cifar("cifar10", tmp_path, [], tiny10.spec)
    gray = images._cifar(tmp_path, "cifar10_gray", tiny10.spec)
    rgb = np.concatenate([b[b"data"] for b in tiny10.train]).reshape(-1, 3, 32, 32) / 255.0
    expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert gray.shape == (1, 32, 32) and gray.num_classes == 10
    np.testing.assert_allclose(gray.train_x[:, 0].numpy(), expected[:40], atol=1e-6)
    assert "grayscale" in gray.label and gray.label.startswith("CIFAR-10 (real data)")


def test_loader_errors_are_one_line(tmp_path, tiny10):
    with pytest.raises(UserError, match="lowrank fetch cifar10"):
        load_cifar("cifar10", tmp_path, tiny10.spec)
    (tmp_path / "cifar10").mkdir()
    shutil.copy(tiny10.archive, tmp_path / "cifar10")
    fetch_cifar("cifar10", tmp_path, [], tiny10.spec)
    official_sizes = tiny10.spec.__class__(**{**tiny10.spec.__dict__, "n_train": 45_000})
    with pytest.raises(UserError, match="expected 45010 and 10") as info:
        load_cifar("cifar10", tmp_path, official_sizes)
    assert "\n" not in str(info.value)


def test_registry_names_and_resolve_dataset_both_ways(tmp_path, tiny10):
    assert {"cifar10", "cifar100", "cifar10_gray", "mnist", "mnist32"} <= set(LOADERS)
    assert manifest_path("cifar10_gray", tmp_path) == tmp_path / "cifar10" / MANIFEST
    # nothing fetched: the fallback (MNIST padded to 32x32), or the name itself without one
    assert resolve_dataset("cifar10", "mnist32", tmp_path) == "mnist32"
    assert resolve_dataset("cifar10", None, tmp_path) == "cifar10"
    (tmp_path / "cifar10").mkdir()
    shutil.copy(tiny10.archive, tmp_path / "cifar10")
    assert resolve_dataset("cifar10", "mnist32", tmp_path) == "mnist32"  # not verified yet
    fetch_cifar("cifar10", tmp_path, [], tiny10.spec)
    assert resolve_dataset("cifar10", "mnist32", tmp_path) == "cifar10"
    assert resolve_dataset("cifar10_gray", "mnist", tmp_path) == "cifar10_gray"
    assert resolve_dataset("cifar100", "mnist32", tmp_path) == "mnist32"
    # an archive truncated after verification no longer counts
    archive = tmp_path / "cifar10" / CIFAR10.archive
    archive.write_bytes(archive.read_bytes()[:100])
    assert resolve_dataset("cifar10", "mnist32", tmp_path) == "mnist32"
    with pytest.raises(UserError, match="unknown dataset 'cifar11'"):
        resolve_dataset("cifar11", "mnist32", tmp_path)


def test_resolve_dataset_does_not_import_torch():
    code = (
        "import sys; from lowrank.data.images import resolve_dataset; "
        "resolve_dataset('cifar10', 'mnist32', '/nonexistent'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src")},
        timeout=60,
    )
    assert out.stdout.strip() == "False", out.stderr


# --- augmentation -------------------------------------------------------------------------


def batch(n=6, c=3, h=8, w=8, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_flipping_twice_is_the_identity_and_flip_mirrors_columns():
    x = batch()
    centre = torch.full((6,), 4)
    flip = torch.tensor([True, False, True, True, False, True])
    once = crop_flip(x, centre, centre, flip, padding=4)
    assert torch.equal(once[flip], x[flip].flip(-1)) and torch.equal(once[~flip], x[~flip])
    assert torch.equal(crop_flip(once, centre, centre, flip, padding=4), x)


def test_crop_is_an_exact_translation_with_zero_fill():
    x = batch()
    dy = torch.tensor([0, 8, 4, 1, 7, 3])
    dx = torch.tensor([8, 0, 4, 6, 2, 5])
    out = crop_flip(x, dy, dx, torch.zeros(6, dtype=torch.bool), padding=4)
    for n in range(6):
        shift_y, shift_x = int(dy[n]) - 4, int(dx[n]) - 4  # out[i, j] = x[i + sy, j + sx]
        for i in range(8):
            for j in range(8):
                si, sj = i + shift_y, j + shift_x
                inside = 0 <= si < 8 and 0 <= sj < 8
                expected = x[n, :, si, sj] if inside else torch.zeros(3)
                assert torch.equal(out[n, :, i, j], expected), (n, i, j)


def test_random_crop_flip_is_deterministic_under_a_seed():
    x = batch(n=64)
    a = random_crop_flip(x, torch.Generator().manual_seed(1))
    b = random_crop_flip(x, torch.Generator().manual_seed(1))
    c = random_crop_flip(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype
    # every output image is some translate (and maybe mirror) of its input: its nonzero
    # values are a subset of the input's values
    for n in range(64):
        assert set(a[n][a[n] != 0].tolist()) <= set(x[n].flatten().tolist())
