"""Getting images in: decode (canonical preprocessing), sources (files, folders, zips), cache, ingest."""

from sslapp.ingest.decode import BadImage, decode_image

__all__ = ["BadImage", "decode_image"]
