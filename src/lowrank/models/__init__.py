"""Plain PyTorch models that the methods rewrite (LoRITa, truncation)."""
