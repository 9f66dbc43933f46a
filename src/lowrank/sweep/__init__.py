"""Truncation sweeps over trained models."""
