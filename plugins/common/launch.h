// The one place that launches a litevit kernel, for every op and both TensorRT interfaces.
//
// Every kernel takes (input pointers in ONNX input order, output pointer, int32 scalars in the
// order Launch::scalars gives), so one cudaLaunchKernel call with an argument array built from the
// op core's Launch serves all of them.
#pragma once

#include <cuda_runtime_api.h>

#include "op_core.h"

namespace litevit
{

// Launches kernels.f32 or kernels.f16 (by kind) on stream. An empty launch (a grid or block
// dimension of 0, i.e. an empty tensor) does nothing and succeeds.
cudaError_t launchKernel(const KernelPair& kernels, DataKind kind, const Launch& launch,
    const void* const* inputs, int numInputs, void* output, cudaStream_t stream);

} // namespace litevit
