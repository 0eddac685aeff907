"""Export: the fine-tuned model (ONNX, TorchScript, safetensors), its encoder, labels and a model card.

This package's `manifest` and `predict` modules import no torch, so `sslapp predict` stays light;
`export` (which writes the models) imports torch.
"""
