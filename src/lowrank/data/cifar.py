"""CIFAR-10 and CIFAR-100: fetch the official python archives, verify them, load as tensors.

The archive (`cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`) is kept as downloaded and
read directly, never extracted: its md5 is the one everybody publishes (torchvision, Paddle,
Keras use the same sums), so the file we verify is exactly the file we read, a pre-populated
data_dir needs just that one file, and no second unverifiable copy sits on disk. Reading it
costs one gunzip (about 2 s for CIFAR-10), negligible beside any training job.

Split: train = the first 45,000 training images (data_batch_1..4 and the first half of
data_batch_5 for CIFAR-10), validation = the last 5,000 (model selection only), test = the
official 10,000 test images (reported, never used to choose). Pixels are uint8 / 255 in [0, 1]
(as torchvision's ToTensor); each CIFAR row is 1024 red, then 1024 green, then 1024 blue
values, each plane row-major 32x32, so a row reshapes directly to (3, 32, 32).
"""

from __future__ import annotations

import io
import pickle
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowrank.atomic import write_json
from lowrank.data.download import ChecksumMismatch, describe_failure, download, file_digest, verify
from lowrank.errors import UserError

MANIFEST = "MANIFEST.json"


@dataclass(frozen=True)
class CifarSpec:
    """Where a CIFAR variant's arrays live in its archive; tests substitute tiny ones."""

    name: str  # params / folder name, e.g. "cifar10"
    title: str  # "CIFAR-10"
    archive: str  # file name of the official archive
    md5: str  # torchvision's sum of the archive
    folder: str  # top-level folder inside the tar
    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    meta_member: str
    label_key: bytes  # b"labels" (CIFAR-10) or b"fine_labels" (CIFAR-100)
    names_key: bytes  # class names in the meta file
    num_classes: int
    n_train: int = 45_000
    n_val: int = 5_000
    n_test: int = 10_000


CIFAR10 = CifarSpec(
    name="cifar10",
    title="CIFAR-10",
    archive="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    folder="cifar-10-batches-py",
    train_members=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_members=("test_batch",),
    meta_member="batches.meta",
    label_key=b"labels",
    names_key=b"label_names",
    num_classes=10,
)
CIFAR100 = CifarSpec(
    name="cifar100",
    title="CIFAR-100",
    archive="cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    folder="cifar-100-python",
    train_members=("train",),
    test_members=("test",),
    meta_member="meta",
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
    num_classes=100,
)
SPECS = {spec.name: spec for spec in (CIFAR10, CIFAR100)}


def spec_of(name: str) -> CifarSpec:
    if name not in SPECS:
        raise UserError(f"unknown CIFAR dataset '{name}' (known: {', '.join(SPECS)})")
    return SPECS[name]


def cifar_dir(data_dir: str | Path, spec: CifarSpec) -> Path:
    return Path(data_dir) / spec.name


def dataset_checksum(spec: CifarSpec) -> str:
    """One string naming the verified archive, shown in every table of the report."""
    return f"md5:{spec.md5} ({spec.archive})"


def fetch_cifar(
    name: str,
    data_dir: str | Path,
    sources: list[dict],
    spec: CifarSpec | None = None,
    timeout: float = 60.0,
) -> dict:
    """Make `data_dir/<name>` hold the verified archive; write and return its manifest.

    A pre-populated directory (the archive copied in by hand, e.g. on a cluster node without
    internet) is verified and used as is, never downloaded again. Otherwise the sources are
    tried in order; a download that fails or mismatches leaves no file behind.
    """
    spec = spec or spec_of(name)
    folder = cifar_dir(data_dir, spec)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / spec.archive
    used = "pre-populated data_dir"
    failures: list[str] = []
    if archive.is_file():
        verify(archive, spec.md5, "md5", "; delete it to download again")
    else:
        for source in sources:
            try:
                download(source["url"], archive, spec.md5, "md5", timeout)
            except (OSError, ChecksumMismatch) as exc:
                failures.append(f"{source['name']}: {describe_failure(exc)}")
                continue
            used = f"{source['name']} <{source['url']}>"
            break
    if not archive.is_file():
        tried = "; ".join(failures) or "no sources configured"
        raise UserError(
            f"could not fetch {spec.title} from any source ({tried}); "
            f"or copy {spec.archive} into {folder}"
        )
    manifest = {
        "dataset": spec.title,
        "format": "python-pickle tar.gz",
        "source": used,
        "files": {
            spec.archive: {
                "md5": spec.md5,
                "sha256": file_digest(archive, "sha256"),
                "bytes": archive.stat().st_size,
            }
        },
        "checksum": dataset_checksum(spec),
        "failed_sources": failures,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


# The only globals a CIFAR pickle needs (numpy arrays); anything else is refused, so loading
# an archive can never run code even if a checksum were ever circumvented.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def _reconstruct():
    try:  # numpy >= 2 (the pickles name numpy.core, a deprecated alias there)
        from numpy._core.multiarray import _reconstruct as fn
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected pickled object {module}.{name}")
        return _reconstruct() if name == "_reconstruct" else getattr(np, name)


def _unpickle(data: bytes) -> dict:
    # encoding="bytes": the batches were written by Python 2, their keys load as b"data" etc.
    return _Unpickler(io.BytesIO(data), encoding="bytes").load()


def read_archive(archive: Path, spec: CifarSpec) -> dict[str, dict]:
    """The unpickled dicts of every member we need, in one sequential pass over the tar.gz."""
    wanted = {
        f"{spec.folder}/{m}": m for m in (*spec.train_members, *spec.test_members, spec.meta_member)
    }
    found: dict[str, dict] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    raw = tar.extractfile(member).read()
                    try:
                        found[wanted[member.name]] = _unpickle(raw)
                    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
                        raise UserError(
                            f"{archive}!{member.name}: not a CIFAR batch ({exc})"
                        ) from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{archive}: not a readable tar.gz ({exc})") from None
    missing = [m for m in wanted if wanted[m] not in found]
    if missing:
        raise UserError(f"{archive}: missing member {missing[0]}")
    return found


def _stack(batches: list[dict], spec: CifarSpec, where: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and int64 labels of consecutive batch dicts."""
    images, labels = [], []
    for batch in batches:
        if b"data" not in batch or spec.label_key not in batch:
            raise UserError(f"{where}: batch lacks b'data' or {spec.label_key!r}")
        data = np.asarray(batch[b"data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise UserError(
                f"{where}: b'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[spec.label_key], dtype=np.int64))
    x, y = np.concatenate(images), np.concatenate(labels)
    if len(x) != len(y):
        raise UserError(f"{where}: {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
        raise UserError(f"{where}: labels outside 0..{spec.num_classes - 1}")
    return x, y


@dataclass
class CifarArrays:
    """The three splits as uint8 (N, 3, 32, 32) images and int64 labels, plus class names."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    checksum: str


def load_cifar(name: str, data_dir: str | Path, spec: CifarSpec | None = None) -> CifarArrays:
    """Verify the archive that `fetch_cifar` placed and split it (45k / 5k / 10k)."""
    spec = spec or spec_of(name)
    folder = cifar_dir(data_dir, spec)
    archive = folder / spec.archive
    if not (folder / MANIFEST).is_file() or not archive.is_file():
        raise UserError(f"{archive}: missing; run `lowrank fetch {spec.name}` first")
    verify(archive, spec.md5, "md5", "; delete it and run `lowrank fetch` again")
    members = read_archive(archive, spec)
    x, y = _stack([members[m] for m in spec.train_members], spec, f"{archive} (train)")
    tx, ty = _stack([members[m] for m in spec.test_members], spec, f"{archive} (test)")
    if len(x) != spec.n_train + spec.n_val or len(tx) != spec.n_test:
        raise UserError(
            f"{archive}: {len(x)} training and {len(tx)} test images, expected "
            f"{spec.n_train + spec.n_val} and {spec.n_test}"
        )
    names = members[spec.meta_member].get(spec.names_key, [])
    if len(names) != spec.num_classes:
        raise UserError(
            f"{archive}!{spec.meta_member}: {len(names)} class names, expected {spec.num_classes}"
        )
    n = spec.n_train
    return CifarArrays(
        x[:n],
        y[:n],
        x[n:],
        y[n:],
        tx,
        ty,
        classes=[c.decode() if isinstance(c, bytes) else str(c) for c in names],
        checksum=dataset_checksum(spec),
    )
