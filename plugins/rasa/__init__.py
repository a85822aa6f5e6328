"""RASA: CUDA kernel, TensorRT plugin core and kernel spec of the multi-dilation query filter."""
