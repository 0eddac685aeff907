"""Training on labels: linear probe, full fine-tune, label propagation and honest estimates."""
