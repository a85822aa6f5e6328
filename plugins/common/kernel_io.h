// The element load and store of every litevit kernel: float or __half storage, float arithmetic.
//
// Device code only, included by plugins/<op>/<op>_kernel.cu; it compiles with nvcc, with NVRTC (no
// C++ standard library: only <cuda_fp16.h>) and with the CPU emulator (tests/plugins/emulator,
// whose cuda_host_shim.h defines what it uses).
#pragma once

#include <cuda_fp16.h>

namespace litevit
{
namespace device
{

// Read-only loads through the non-coherent cache (every kernel input is read-only).
__device__ __forceinline__ float loadFloat(const float* p)
{
    return __ldg(p);
}

__device__ __forceinline__ float loadFloat(const __half* p)
{
    return __half2float(__ldg(p));
}

__device__ __forceinline__ void storeFloat(float* p, float value)
{
    *p = value;
}

__device__ __forceinline__ void storeFloat(__half* p, float value)
{
    *p = __float2half_rn(value);
}

} // namespace device
} // namespace litevit
