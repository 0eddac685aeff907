"""Self-supervised pretraining: backbones, batched augmentation, methods and the training loop."""
