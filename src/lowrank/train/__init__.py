"""Training loops that keep data on the device and resume from checkpoints."""
