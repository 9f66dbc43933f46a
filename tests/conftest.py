"""Shared fixtures: a local HTTP server, format-exact MNIST files, the real MNIST cache."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from lowrank.data.mnist import Checksums  # noqa: E402


@pytest.fixture
def serve(tmp_path):
    """Serve a directory on 127.0.0.1; returns a function dir -> base URL."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file, gzip-compressed, exactly as the official MNIST files."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1, mtime=0)


def make_tiny_mnist(folder: Path, n_train: int = 60_010, n_test: int = 20, seed: int = 0):
    """Format-exact tiny MNIST: the four IDX files and the equivalent mnist.pkl.gz + wheel.

    The training file needs more than 50,000 images for the 50k/10k split; labels and pixels
    are random. Returns (Checksums of these files, wheel sha256).
    """
    rng = np.random.default_rng(seed)

    def images(n):  # sparse like real digits, so gzip stays fast
        pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        return pixels * (rng.random((n, 28, 28)) < 0.05)

    train_img = images(n_train)
    train_lab = rng.integers(0, 10, n_train, dtype=np.uint8)
    test_img = images(n_test)
    test_lab = rng.integers(0, 10, n_test, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte.gz": idx_bytes(train_img),
        "train-labels-idx1-ubyte.gz": idx_bytes(train_lab),
        "t10k-images-idx3-ubyte.gz": idx_bytes(test_img),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(test_lab),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)

    def flat(x):
        return (x.reshape(len(x), -1) / 256.0).astype(np.float32)

    splits = (
        (flat(train_img[:50_000]), train_lab[:50_000].astype(np.int64)),
        (flat(train_img[50_000:]), train_lab[50_000:].astype(np.int64)),
        (flat(test_img), test_lab.astype(np.int64)),
    )
    pkl = gzip.compress(pickle.dumps(splits, protocol=2), compresslevel=1, mtime=0)
    (folder / "mnist.pkl.gz").write_bytes(pkl)
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr("mnist/data/mnist.pkl.gz", pkl)
    (folder / "tiny.whl").write_bytes(wheel.getvalue())
    sums = Checksums(
        idx_md5={n: hashlib.md5(d).hexdigest() for n, d in files.items()},
        pkl_sha256=hashlib.sha256(pkl).hexdigest(),
    )
    return sums, hashlib.sha256(wheel.getvalue()).hexdigest()


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_mnist_served")
    sums, wheel_sha = make_tiny_mnist(folder)
    return folder, sums, wheel_sha


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    """A data_dir holding real MNIST, fetched once with the project's own fetch code.

    LOWRANK_TEST_DATA may point at a pre-populated data_dir; by default the repo's data/.
    """
    from lowrank.config import load_params
    from lowrank.data.mnist import fetch_mnist

    data_dir = Path(os.environ.get("LOWRANK_TEST_DATA", REPO / "data"))
    params = load_params(REPO / "params.yaml")
    fetch_mnist(data_dir, params["datasets"]["mnist"]["sources"], timeout=30)
    return data_dir


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory, real_mnist_dir) -> Path:
    """The whole study at smoke scale, run once by Snakemake in a temporary copy."""
    from test_workflow import BIN, make_project, run

    project = make_project(tmp_path_factory.mktemp("smoke") / "p", real_mnist_dir)
    run([str(BIN / "snakemake"), "--cores", "2"], project)
    return project
