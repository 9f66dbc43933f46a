"""The settings each Tucker step depends on: its run directories' names and, in
workflow/rules/tucker.smk, its rerun trigger. Kept free of torch so `snakemake -n` stays fast."""

# Settings each job depends on (its rerun trigger and its run directory's name).
DENSE_KEYS = (
    "dataset",
    "train_subset",
    "val_subset",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "curve_every",
)
POSTHOC_KEYS = (
    "test_subset",
    "rank_rules",
    "search_threshold",
    "search_step",
    "energy",
    "sensitivity_fraction",
    "finetune_epochs",
    "finetune_lr",
    "timing_batch",
    "timing_warmup",
    "timing_repeats",
)
FINETUNE_KEYS = ("search_threshold", "search_step", "energy", "finetune_epochs", "finetune_lr")
TRAINED_KEYS = ("test_subset", "hooi_energy", "target_acc", "naive_max_terms") + POSTHOC_KEYS[-3:]
