"""One exception type for problems the user can fix (bad params, missing or corrupt files),
and one line for every file-system or data-format fault that reaches the command line.

The CLI prints these as a single line and exits with status 2, never with a traceback
(`--debug` adds it). `describe` turns the faults a user can cause or fix (a path that is a
file, a full disk, no permission, corrupt JSON or YAML, an allocation too large for the
machine) into that line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import json

RESUME = (
    "rerun the same command: finished runs are kept and training resumes from its last checkpoint"
)


class UserError(Exception):
    """A problem in the user's input or environment, reported in one line."""


def _name(exc: OSError) -> str:
    names = [str(n) for n in (exc.filename, exc.filename2) if n]
    return " -> ".join(names) or "a file"


def _os_error(exc: OSError) -> str:
    name = _name(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{name}: not found; check the path, or run the step that writes it first"
    if isinstance(exc, NotADirectoryError):
        return f"{name}: part of this path is a file, not a directory; use a directory path"
    if isinstance(exc, IsADirectoryError):
        return f"{name}: is a directory where a file belongs; remove or rename it"
    if isinstance(exc, FileExistsError):
        return f"{name}: already exists where a directory belongs; remove or rename it"
    if isinstance(exc, PermissionError):
        return f"{name}: permission denied; choose a location you can write to or fix it"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{name}: no space left on the device; free space (or move results_dir), then {RESUME}"
        )
    if exc.errno == errno.EROFS:
        return f"{name}: read-only file system; choose a writable location"
    return f"{name}: {exc.strerror or exc.__class__.__name__}"


def _runtime_error(exc: RuntimeError) -> str | None:
    text = str(exc)
    low = text.lower()
    if "out of memory" in low or "defaultcpuallocator" in low or "not enough memory" in low:
        first = text.strip().splitlines()[0][:160] if text.strip() else "allocation failed"
        return (
            f"out of memory ({first}); reduce width, factors or batch_size, or give the job "
            f"more memory"
        )
    if "unexpected pos" in low or "file write failed" in low or "pytorchstreamwriter" in low:
        return (
            f"writing a checkpoint failed (disk full or not writable?); free space, then {RESUME}"
        )
    return None


def describe(exc: BaseException) -> str | None:
    """The one line for a fault the user can fix, or None for a bug (keep the traceback)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"a JSON file is not valid JSON (line {exc.lineno}); --debug shows which"
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; reduce width, factors or batch_size, or give the job more memory"
    if isinstance(exc, RuntimeError):
        return _runtime_error(exc)
    try:
        import yaml
    except ImportError:  # pragma: no cover - yaml is a dependency
        return None
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name}, line {mark.line + 1}" if mark else "a YAML file"
        return f"{where}: not valid YAML; fix or delete it"
    return None
