"""Models, the ground the compute packages stand on: backbones, encoders, starting weights, fitted
encoders (patch dictionary, pixel PCA) and normalisation constants. Imports nothing above it."""
