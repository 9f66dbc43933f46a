"""Checksummed downloads that never leave a partial or unverified file behind."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from lowrank.atomic import atomic_path, read_json, write_json
from lowrank.errors import UserError

CHUNK = 1 << 20


class ChecksumMismatch(UserError):
    """A file's digest differs from the expected one."""


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: str | os.PathLike, expected: str, algorithm: str, hint: str = "") -> None:
    """Raise ChecksumMismatch (one line, naming the file) unless `path` has digest `expected`."""
    got = file_digest(path, algorithm)
    if got != expected:
        raise ChecksumMismatch(
            f"{path}: checksum mismatch ({algorithm} expected {expected}, got {got}){hint}"
        )


def download(
    url: str,
    dest: str | os.PathLike,
    expected: str,
    algorithm: str = "sha256",
    timeout: float = 60.0,
) -> Path:
    """Stream `url` to `dest`, verifying its digest before the file appears at `dest`.

    Raises ChecksumMismatch on a wrong digest and OSError/URLError when unreachable; in both
    cases nothing is written at `dest`.
    """
    dest = Path(dest)
    h = hashlib.new(algorithm)
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != expected:
            raise ChecksumMismatch(
                f"{url}: checksum mismatch ({algorithm} expected {expected}, got {h.hexdigest()})"
            )
    return dest


def describe_failure(exc: BaseException) -> str:
    """A short reason for a failed mirror, for the one-line summary."""
    if isinstance(exc, ChecksumMismatch):
        return str(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


def write_manifest(path: Path, manifest: dict) -> dict:
    """Write a dataset manifest unless an identical one (same files and checksum) is there.

    A manifest that is not JSON is replaced (the files were just verified). Rewriting it
    on every `fetch` would change its mtime and make Snakemake rerun every job
    downstream of the data, although the data did not change.
    """
    if path.is_file():
        try:
            old = read_json(path)
        except UserError:  # a corrupt manifest of verified files: write it anew
            old = {}
        if all(old.get(k) == manifest.get(k) for k in ("dataset", "format", "files", "checksum")):
            return old
    write_json(path, manifest)
    return manifest
