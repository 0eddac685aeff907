"""Embeddings, the 2-D map and clusters: what the Explore and Label pages show."""
