"""CSA: CUDA kernel, plugin core and kernel contract for the Convolutional Self-Attention op."""
