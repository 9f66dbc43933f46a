"""Measurements of models: FLOPs and parameters."""
