"""Load params.yaml, validate it against the JSON schema, and pick the block of one scale.

params.yaml is the single source of truth; the schema lives in workflow/schemas/ so the
Snakefile and the CLI validate the same way and report the first error in one line, naming
the file the bad value came from. Overrides merge as Snakemake merges them: each
`--configfile` is merged into params.yaml key by key (nested mappings recursively, anything
else replaced), then `--config KEY=VALUE` on top; the merged result is what is validated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lowrank.errors import UserError

SCHEMA_RELATIVE = Path("workflow/schemas/params.schema.yaml")
COMMAND_LINE = "--config (command line)"

# "integer" in JSON Schema accepts 6.0; a width or depth of 6.0 would later name a job
# `fcn6.0_N1`, so integer-valued keys take Python ints only (never bools either).
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
)
StrictValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)

# libyaml's safe loader when installed: the same values, parsed 10x faster (the plan reads
# params.yaml and the schema on every `snakemake` and `lowrank` call).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Origin = str | Callable[[Sequence[str | int]], str] | None


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
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a YAML file")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc.__class__.__name__})") from None


def validate(params: Any, schema: dict, origin: Origin = None) -> None:
    """Raise UserError naming the offending key path of the most relevant schema error.

    `origin` names where the value came from: a file name, or a function of the key path
    (see `origin_finder`) when params is a merge of several sources."""
    error = jsonschema.exceptions.best_match(StrictValidator(schema).iter_errors(params))
    if error is None:
        return
    path = list(error.absolute_path)
    key = ".".join(str(p) for p in path) or "<top level>"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path = [*path, extra[0]] if extra else path
        key = ".".join(map(str, path)) if extra else key
        message = f"params: unknown key '{key}'"
    elif error.validator == "required":
        message = f"params: {key}: {error.message}"
    else:
        message = f"params: key '{key}': {error.message}"
    where = origin(path) if callable(origin) else origin
    raise UserError(f"{where}: {message}" if where else message)


def merge(base: Any, over: Any) -> Any:
    """Snakemake's merge of config files: mappings key by key, recursively; else replaced."""
    if not (isinstance(base, Mapping) and isinstance(over, Mapping)):
        return over
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(base[key], value) if key in base else value
    return out


def _sets(tree: Any, path: Sequence[str | int]) -> bool:
    """Whether `tree`, merged over the others, decides the value at `path`: it has the key
    itself, or a non-mapping above it (a list or value replaces what was there whole)."""
    node = tree
    for part in path:
        if not isinstance(node, Mapping):
            return True
        if part not in node:
            return False
        node = node[part]
    return True


def origin_finder(
    base: str | Path,
    configfiles: Sequence[str | Path] = (),
    overrides: Mapping | None = None,
) -> Callable[[Sequence[str | int]], str]:
    """A function from a key path to the source that set it: `--config` on the command line,
    else the last `--configfile` that has the key, else params.yaml. The top level (a
    missing top-level key) belongs to the last file given."""
    files = [(str(f), read_yaml(f)) for f in configfiles]

    def origin(path: Sequence[str | int]) -> str:
        if not path:
            return files[-1][0] if files else str(base)
        if overrides and _sets(overrides, path):
            return COMMAND_LINE
        for name, tree in reversed(files):
            if _sets(tree, path):
                return name
        return str(base)

    return origin


def parse_config_args(entries: Sequence[str]) -> dict:
    """`--config KEY=VALUE` entries parsed as Snakemake parses them (int, float, bool, YAML
    with every scalar a string, else the string), so the CLI validates the same values."""
    config: dict = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise UserError(f"{COMMAND_LINE}: '{entry}' is not KEY=VALUE")
        config[key] = _parse_value(value) if value != "" else None
    return config


def _parse_value(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        return text


def merged_params(
    path: str | Path = "params.yaml",
    overrides: dict | None = None,
    configfiles: Sequence[str | Path] = (),
    config: Mapping | None = None,
) -> dict:
    """params.yaml with `configfiles` then `config` (command-line `--config`) merged as
    Snakemake merges them, then top-level `overrides` (e.g. scale=smoke); not validated."""
    params: dict = {}
    for source in (path, *configfiles):
        tree = read_yaml(source)
        if not isinstance(tree, dict):
            raise UserError(f"{source}: expected a mapping at the top level")
        params = merge(params, tree)
    params = merge(params, dict(config or {}))
    return {**params, **(overrides or {})}


def load_params(
    path: str | Path = "params.yaml",
    overrides: dict | None = None,
    configfiles: Sequence[str | Path] = (),
    config: Mapping | None = None,
) -> dict:
    """The merged params (see `merged_params`), validated, errors naming their source."""
    params = merged_params(path, overrides, configfiles, config)
    origin = origin_finder(path, configfiles, config) if configfiles or config else str(path)
    validate(params, read_yaml(find_schema(path)), origin)
    return params


def job_args(
    root: str | Path, configfiles: Sequence[str | Path] = (), overrides: Mapping | None = None
) -> str:
    """`--configfile` arguments that give every job the params the plan validated.

    Jobs read params.yaml themselves, so without these a `snakemake --configfile F` or
    `--config KEY=VALUE` would change the plan but not what the jobs train. The command
    line's `--config` values are written (YAML, atomically) to
    .snakemake/lowrank/overrides-<hash>.yaml under `root` and passed last, as Snakemake
    merges them."""
    import shlex

    files = [str(Path(f).resolve()) for f in configfiles]
    if overrides:
        from lowrank.atomic import write_text

        text = yaml.safe_dump(json.loads(json.dumps(dict(overrides), default=str)))
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        path = Path(root) / f".snakemake/lowrank/overrides-{digest}.yaml"
        if not path.is_file():  # named by content: two runs at once never share one
            write_text(path, text)
        files.append(str(path.resolve()))
    return " ".join(f"--configfile {shlex.quote(f)}" for f in files)


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
