"""Datasets: download with checksums and mirrors, then load once into tensors."""
