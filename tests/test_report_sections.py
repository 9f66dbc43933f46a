"""The report assembles every study's Section: html, datasets, ledger rows and links."""

from __future__ import annotations

import sys
import types

import pandas as pd
import yaml

from lowrank.report import build
from lowrank.report.section import DatasetUse, Section


def fake_section_module(measured: pd.DataFrame) -> types.ModuleType:
    module = types.ModuleType("fake_toeplitz_section")

    def build_section(results, cfg, scale, out):
        assert cfg == {"answer": 42}
        return Section(
            key="toeplitz",
            title="Fake Toeplitz",
            anchor="fake-toeplitz",
            html='<h2 id="fake-toeplitz">Fake Toeplitz section</h2>',
            measured=measured,
            scale_note="fake scale note",
            datasets=[DatasetUse("Fake dataset (not real)", "sha256:abc", "for the test")],
            train_seconds=5.0,
        )

    module.build = build_section
    return module


def test_sections_land_in_page_ledger_and_header(smoke_project, monkeypatch, tmp_path):
    measured = pd.DataFrame(
        [{"metric": "toeplitz.naive_slowdown", "seed": 0, "value": 20.0}]  # claim: > 13x
    )
    monkeypatch.setitem(sys.modules, "fake_toeplitz_section", fake_section_module(measured))
    monkeypatch.setattr(
        build, "SECTION_MODULES", {"toeplitz": ("fake_toeplitz_section", ("toeplitz",))}
    )
    params = yaml.safe_load((smoke_project / "params.yaml").read_text())
    block = {**params["scales"]["smoke"], "toeplitz": {"answer": 42}}
    root = smoke_project
    schema = yaml.safe_load((root / "workflow/schemas/metrics.yaml").read_text())
    schema["toeplitz.naive_slowdown"]["produced"] = True
    (tmp_path / "workflow/schemas").mkdir(parents=True)
    (tmp_path / "workflow/schemas/metrics.yaml").write_text(yaml.safe_dump(schema))
    (tmp_path / "claims.yaml").write_text((root / "claims.yaml").read_text())
    html_path = build.build_report(
        params, block, smoke_project / "results/smoke", tmp_path / "out", tmp_path
    )
    html = html_path.read_text()
    assert "Fake Toeplitz section" in html and "Fake dataset (not real)" in html
    assert html.index('id="ledger"') < html.index("Fake Toeplitz section")
    assert "fake scale note" in html
    ledger = pd.read_csv(tmp_path / "out/tables/claims_ledger.csv")
    mine = ledger[ledger["metric"] == "toeplitz.naive_slowdown"]
    assert len(mine) and (mine["verdict"] != "not run at this scale").all()
    assert (mine["link"] == "#fake-toeplitz").all()
    assert (mine["scale_protocol"] == "fake scale note").all()
    others = ledger[ledger["metric"].str.startswith("rankconv.")]
    assert (others["verdict"] == "not run at this scale").all()
    assert "<code>toeplitz</code>" not in html  # no longer listed as not run
