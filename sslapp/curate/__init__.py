"""Curating images with the chosen embedding: likely label errors, more like this, near-duplicates."""
