"""Load params.yaml, validate it against the JSON schema, and pick the block of one scale.

params.yaml is the single source of truth; the schema lives in workflow/schemas/ so the
Snakefile and the CLI validate the same way and report the first error in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lowrank.errors import UserError

SCHEMA_RELATIVE = Path("workflow/schemas/params.schema.yaml")


def find_schema(params_path: str | Path) -> Path:
    """The schema next to params.yaml (repo root), falling back to the current directory."""
    package_root = Path(__file__).resolve().parents[2]  # a resolved file under results/
    for root in (Path(params_path).resolve().parent, Path.cwd(), package_root):
        candidate = root / SCHEMA_RELATIVE
        if candidate.is_file():
            return candidate
    raise UserError(f"{SCHEMA_RELATIVE}: schema file not found next to {params_path}")


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}") from None


def validate(params: Any, schema: dict) -> None:
    """Raise UserError naming the offending key path of the most relevant schema error."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(params))
    if error is None:
        return
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        key = ".".join([*map(str, error.absolute_path), extra[0]]) if extra else key
        raise UserError(f"params: unknown key '{key}'")
    if error.validator == "required":
        raise UserError(f"params: {key}: {error.message}")
    raise UserError(f"params: key '{key}': {error.message}")


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> dict:
    """Read, merge top-level overrides (e.g. scale=smoke), validate, and return the params."""
    params = read_yaml(path)
    if not isinstance(params, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    params = {**params, **(overrides or {})}
    validate(params, read_yaml(find_schema(path)))
    return params


def scale_block(params: dict, scale: str | None = None) -> dict:
    """The block of settings of the chosen scale (smoke, quick or paper)."""
    name = scale or params["scale"]
    if name not in params["scales"]:
        raise UserError(f"params: key 'scale': unknown scale '{name}'")
    return params["scales"][name]


def params_hash(obj: Any) -> str:
    """A short stable hash of a params block, stored with every result for provenance."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
