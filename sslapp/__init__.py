"""sslapp: few-label image classification on top of self-supervised pretraining."""
__version__ = "0.1.0"
