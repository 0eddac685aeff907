"""Self-supervised methods for texts, one file each behind `base.TextSSLMethod`, driven by one loop
(`loop.pretrain_texts`) with the image runs' progress, stop requests, checkpoints, health check and
encoder files. Registered in `sslapp.ssl.methods.METHODS` with ``modality: text``."""
