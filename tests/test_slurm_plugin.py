"""The installed SLURM executor plugin knows every option the profile and README use (fast)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow/profiles/slurm/config.yaml"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def profile_plugin_options() -> set[str]:
    """Every `slurm-...` option of the profile, the commented ones included."""
    return set(re.findall(r"^#?\s*slurm-([a-z-]+):", PROFILE.read_text(), re.M))


def test_pin_admits_only_plugins_with_status_command():
    pyproject = (REPO / "pyproject.toml").read_text()
    pin = re.search(r'"snakemake-executor-plugin-slurm>=([\d.]+)"', pyproject)
    assert pin and _version(pin.group(1)) >= (2, 1), "slurm-status-command appeared in 2.1"


def test_installed_plugin_has_every_profile_and_readme_option():
    plugin = pytest.importorskip("snakemake_executor_plugin_slurm")
    assert _version(importlib.metadata.version("snakemake-executor-plugin-slurm")) >= (2, 1)
    # Snakemake turns each ExecutorSettings field into --slurm-<field with dashes>
    fields = {f.name.replace("_", "-") for f in dataclasses.fields(plugin.ExecutorSettings)}
    used = profile_plugin_options()
    assert {"status-command", "requeue", "init-seconds-before-status-checks"} <= used
    readme = (REPO / "README.md").read_text()
    used |= set(re.findall(r"`slurm-([a-z-]+):", readme))
    assert used <= fields, used - fields
    status = next(
        f for f in dataclasses.fields(plugin.ExecutorSettings) if f.name == "status_command"
    )
    assert "squeue" in status.metadata["help"]
