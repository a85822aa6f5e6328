// CSA's CUDA kernel: per-window attention aggregation and overlapping fold-sum in one pass.
//
// One thread per output element (thread mapping and gather in csa_gather.h, shared with the
// host tests): it gathers the k x k-tap sums of every window covering its pixel, so nothing is
// written twice, no atomics are needed and the output needs no zeroing. Loads and stores are
// coalesced along W. FP32 and FP16 (__half storage, float accumulation).
//
// Compiles with nvcc and NVRTC from this file. NVRTC needs the CUDA include directory (for
// <cuda_fp16.h>) and finds csa_gather.h and ../common/kernel_io.h when the program is named by
// this file's path (or this folder is an include directory).
//
// Kernel arguments: attn (B, heads*k^4, H', W'), values (B, k^2*C, H', W'), output
// (B, C, s*(H'-1)+k-p, s*(W'-1)+k-p), then the int32 scalars of CsaOp::launch():
// batch, channels, heads, kernel_size, stride, padding, H', W'.
#include <cuda_fp16.h>

#include "../common/kernel_io.h"
#include "csa_gather.h"

namespace
{

using litevit::device::storeFloat;

template <typename T>
__device__ __forceinline__ void csaGather(const T* __restrict__ attn, const T* __restrict__ values,
    T* __restrict__ output, int batch, int channels, int heads, int kernel_size, int stride, int padding,
    int windows_h, int windows_w)
{
    const litevit::csa::Geometry geometry = litevit::csa::makeGeometry(
        batch, channels, heads, kernel_size, stride, padding, windows_h, windows_w);
    litevit::csa::Element element;
    if (!litevit::csa::threadElement(geometry, blockIdx.x, blockDim.x, threadIdx.x, element))
    {
        return;
    }
    storeFloat(output + element.offset, litevit::csa::gatherElement(geometry, attn, values, element));
}

} // namespace

extern "C" __global__ void __launch_bounds__(litevit::csa::kBlockSize) litevit_csa_f32(
    const float* __restrict__ attn, const float* __restrict__ values, float* __restrict__ output,
    int batch, int channels, int heads, int kernel_size, int stride, int padding, int windows_h,
    int windows_w)
{
    csaGather(
        attn, values, output, batch, channels, heads, kernel_size, stride, padding, windows_h, windows_w);
}

extern "C" __global__ void __launch_bounds__(litevit::csa::kBlockSize) litevit_csa_f16(
    const __half* __restrict__ attn, const __half* __restrict__ values, __half* __restrict__ output,
    int batch, int channels, int heads, int kernel_size, int stride, int padding, int windows_h,
    int windows_w)
{
    csaGather(
        attn, values, output, batch, channels, heads, kernel_size, stride, padding, windows_h, windows_w);
}

#ifndef __CUDACC_RTC__
#include "csa_core.h"

namespace litevit
{

const KernelPair& csaKernels()
{
    static const KernelPair kernels{
        reinterpret_cast<const void*>(litevit_csa_f32), reinterpret_cast<const void*>(litevit_csa_f16)};
    return kernels;
}

} // namespace litevit
#endif
