"""Small format-exact CIFAR archives for tests: the official tar layout and pickle dicts.

The official batches were written by Python 2's cPickle (protocol 2): dict keys and the numpy
array payloads are Python 2 `str` (BINSTRING opcodes, loaded as bytes with encoding="bytes")
and arrays are rebuilt by `numpy.core.multiarray._reconstruct`. These files are written the
same way, only with 10 images per batch file instead of 10,000.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from lowrank.data.cifar import CIFAR10, CIFAR100, CifarSpec


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: bytes as BINSTRING (py2 str), not _codecs.encode."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    # numpy 2 names its private module; the official files (numpy 1, 2009) name numpy.core
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _tar(members: dict[str, bytes], top: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        folder = tarfile.TarInfo(top)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _batch(rng, n: int, label_keys: dict[bytes, int], title: bytes) -> dict:
    batch = {
        b"batch_label": title,
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }
    for key, classes in label_keys.items():
        batch[key] = [int(v) for v in rng.integers(0, classes, n)]
    return batch


@dataclasses.dataclass
class TinyCifar:
    archive: Path  # the served .tar.gz
    spec: CifarSpec  # official layout, this archive's md5 and split sizes
    train: list[dict]  # the batch dicts as written, for exact comparisons
    test: dict


def make_tiny_cifar10(folder: Path, per_batch: int = 10, seed: int = 0) -> TinyCifar:
    rng = np.random.default_rng(seed)
    train = [
        _batch(rng, per_batch, {b"labels": 10}, b"training batch %d of 5" % i) for i in range(1, 6)
    ]
    test = _batch(rng, per_batch, {b"labels": 10}, b"testing batch 1 of 1")
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
        + [b"dog", b"frog", b"horse", b"ship", b"truck"],
        b"num_vis": 3072,
    }
    members = {f"data_batch_{i + 1}": py2_pickle(b) for i, b in enumerate(train)}
    members |= {"readme.html": b"<html></html>", "test_batch": py2_pickle(test)}
    members["batches.meta"] = py2_pickle(meta)
    return _write(folder, CIFAR10, members, 5 * per_batch, per_batch, train, test)


def make_tiny_cifar100(folder: Path, n_train: int = 50, n_test: int = 10, seed: int = 1):
    rng = np.random.default_rng(seed)
    keys = {b"fine_labels": 100, b"coarse_labels": 20}
    train = _batch(rng, n_train, keys, b"training batch 1 of 1")
    test = _batch(rng, n_test, keys, b"testing batch 1 of 1")
    meta = {
        b"fine_label_names": [b"class%d" % i for i in range(100)],
        b"coarse_label_names": [b"super%d" % i for i in range(20)],
    }
    members = {"train": py2_pickle(train), "test": py2_pickle(test), "meta": py2_pickle(meta)}
    return _write(folder, CIFAR100, members, n_train, n_test, [train], test)


def _write(folder, official, members, n_train_total, n_test, train, test) -> TinyCifar:
    data = _tar(members, official.folder)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / official.archive
    archive.write_bytes(data)
    n_val = n_train_total // 5
    spec = dataclasses.replace(
        official,
        md5=hashlib.md5(data).hexdigest(),
        n_train=n_train_total - n_val,
        n_val=n_val,
        n_test=n_test,
    )
    return TinyCifar(archive, spec, train, test)
