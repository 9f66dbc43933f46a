"""The contract between a study and the report.

Each study has a module `lowrank.report.sections.<study>` with a function
`build(results: Path, cfg: dict, scale: str, out: Path) -> Section`, where `results` is
results/<scale>/, `cfg` the study's params block, and `out` reports/<scale>/ (write figures to
out/figures, tables to out/tables). The report puts the section's HTML in the page, adds its
measured rows to the claims ledger, and lists its datasets in the header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lowrank.report.comparability import RunProtocol


@dataclass
class DatasetUse:
    """What data a section's numbers come from (shown in the report header)."""

    label: str  # e.g. "MNIST (real data), zero-padded to 32x32"
    checksum: str
    note: str = ""  # e.g. "stand-in for grayscale CIFAR-10, which is not in data_dir"


@dataclass
class Section:
    key: str  # the study key of workflow/schemas/metrics.yaml, e.g. "toeplitz"
    title: str
    anchor: str  # HTML id of the section, e.g. "toeplitz"
    html: str  # an HTML fragment (h2 and below); images as data URIs from figures.save
    measured: pd.DataFrame  # long format: metric, <selector keys...>, seed, value
    scale_note: str = ""  # what this scale changes from the source's protocol
    datasets: list[DatasetUse] = field(default_factory=list)
    train_seconds: float = 0.0
    run: RunProtocol | None = None  # what the runs did, which the ledger compares with claims
