"""GhostHead: CUDA kernel, TensorRT plugin core and kernel spec of ELSA's ghost-head aggregation."""
