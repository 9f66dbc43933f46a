"""Compression methods: model transforms that return new, plain PyTorch modules."""
