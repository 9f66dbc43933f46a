"""The configurations of the LoRITa CNN/ViT studies, by name, without importing torch.

The Snakefile expands its jobs from these and the CLI checks a requested configuration
against them, so both agree on names. A configuration is one (model, dataset) of a study;
each is trained for every N of the study's `factors`.

Studies: `lorita_cnn` (Table 2 CNNs, Figure 2 right, Figure 4), `lorita_vit` (Tables 1-2
ViTs, Figures 5-6), `structured` (Tables 3-4: ResNet20/VGG16 against structured pruning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowrank.errors import UserError

MODEL_STUDIES = ("lorita_cnn", "lorita_vit", "structured")

# Settings every training run depends on (besides model, dataset, N, weight decay, seed).
TRAIN_KEYS = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "schedule",
    "augment",
    "train_subset",
)


@dataclass(frozen=True)
class ModelConfig:
    study: str
    id: str  # e.g. "vgg13_cifar10", "vit-l8-h8-aug_cifar10"
    model: str  # registry name
    tag: str  # the name claims use: "vgg13", "vit-l8-h8"
    dataset: str  # requested dataset (params); the data actually used is recorded in results
    fallback: str | None
    augment: bool
    kwargs: dict = field(default_factory=dict)  # builder arguments besides classes/channels


def _vit_tag(entry: dict) -> str:
    return f"vit-l{entry['depth']}-h{entry['heads']}"


def configs(study: str, block: dict) -> dict[str, ModelConfig]:
    """Every configuration of `study` in a scale block, by id (empty if the study is absent)."""
    cfg = block.get(study)
    if cfg is None:
        return {}
    out: dict[str, ModelConfig] = {}
    if study == "lorita_cnn":
        for dataset in cfg["datasets"]:
            for model in cfg["models"]:
                out[f"{model}_{dataset}"] = ModelConfig(
                    study,
                    f"{model}_{dataset}",
                    model,
                    model,
                    dataset,
                    cfg.get("fallback"),
                    cfg["augment"],
                    {"width": cfg["width"]},
                )
    elif study == "structured":
        for model in cfg["models"]:
            if model not in cfg["widths"]:
                raise UserError(f"params: key 'structured.widths' has no entry for '{model}'")
            kwargs = {"width": cfg["widths"][model]}
            if model == "resnet20":
                kwargs["shortcut"] = cfg["resnet20_shortcut"]
            out[f"{model}_{cfg['dataset']}"] = ModelConfig(
                study,
                f"{model}_{cfg['dataset']}",
                model,
                model,
                cfg["dataset"],
                cfg.get("fallback"),
                cfg["augment"],
                kwargs,
            )
    elif study == "lorita_vit":
        for entry in cfg["vits"]:
            tag = _vit_tag(entry)
            cid = f"{tag}{'-aug' if entry['augment'] else ''}_{cfg['dataset']}"
            kwargs = {k: cfg[k] for k in ("width", "patch_size", "dim", "mlp_dim")}
            kwargs.update(depth=entry["depth"], heads=entry["heads"])
            out[cid] = ModelConfig(
                study,
                cid,
                "vit",
                tag,
                cfg["dataset"],
                cfg.get("fallback"),
                entry["augment"],
                kwargs,
            )
    else:
        raise UserError(f"unknown model study '{study}' (known: {', '.join(MODEL_STUDIES)})")
    return out


def get_config(study: str, block: dict, config_id: str) -> ModelConfig:
    found = configs(study, block)
    if config_id not in found:
        known = ", ".join(found) or "none at this scale"
        raise UserError(f"params: {study} has no configuration '{config_id}' (known: {known})")
    return found[config_id]


def job_names(study: str, block: dict) -> list[str]:
    """`<config id>_N<n>` for every configuration and N: one training job each."""
    cfg = block.get(study)
    if cfg is None:
        return []
    return [f"{cid}_N{n}" for cid in configs(study, block) for n in cfg["factors"]]
