# Shared by the CNN/ViT LoRITa studies (lorita_cnn, lorita_vit, structured): job names, the
# data each job needs, settings hashes and resources. Included by each study's rule file.
import re

from lowrank.studies import configs as model_configs, job_names as model_job_names


def model_study_data(study):
    """Input function: the fetch rule of the dataset a configuration will really use.

    With a fallback (quick), CIFAR is used when its verified manifest is in data_dir and the
    fallback's fetch rule runs otherwise (lowrank.data.images.resolve_dataset decides again,
    strictly, when the job runs); without one (paper) the dataset's own fetch rule runs.
    """
    def data(wildcards):
        config = model_configs(study, BLOCK)[wildcards.config]
        name = config.dataset
        if config.fallback and not Path(DATA, name, "MANIFEST.json").is_file():
            name = config.fallback
        name = "mnist" if name.startswith("mnist") else name.removesuffix("_gray")
        return getattr(rules, f"fetch_{name}").output

    return data


def model_study_hashes(study, sweep_keys):
    """(training settings hash, sweep settings hash) of a study's params block."""
    cfg = BLOCK[study]
    report_only = ("drop_tolerance",)
    train = params_hash({k: v for k, v in cfg.items() if k not in sweep_keys + report_only})
    return train, params_hash({k: cfg[k] for k in sweep_keys})


def config_pattern(study):
    """Wildcard constraint: exactly the study's configuration ids."""
    return "|".join(re.escape(c) for c in model_configs(study, BLOCK)) or "^$"


# A paper-scale training job runs every seed x weight decay of one (model, dataset, N) for
# 200 epochs: days on a CPU, hours on a GPU (params `device`); quick jobs take seconds.
MODEL_TRAIN_RUNTIME = 2880 if SCALE == "paper" else 60
MODEL_GPU = GPU
