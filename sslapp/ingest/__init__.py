"""Getting items in: sources (files, folders, zips), the all-or-nothing ingest and the cache writer.

How one file becomes a cache row is the workspace modality's job (`sslapp.modalities`)."""
