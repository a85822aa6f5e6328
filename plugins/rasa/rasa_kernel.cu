// RASA: the multi-dilation, shared-weight depthwise filtering of LVT's query (litevit/ops/rasa.py).
//
//     out[b, c, y, x] = sum_i SiLU(sum_{ky, kx} weight[c, 0, ky, kx]
//                                  * q[b, c, y + (ky - r) * d_i, x + (kx - r) * d_i])
//
// with r = (k - 1) / 2 and zero padding outside the map. The decomposed graph runs one depthwise
// convolution, one SiLU and one add per dilation; this kernel does all of it in one pass: each
// output element is written once and q is read from DRAM once (the overlapping windows of
// neighbouring threads hit L1/L2).
//
// Thread mapping (RasaOp::launch and RasaOp::outputsOfThread mirror it):
//   blockIdx.z = b, blockIdx.y = c, blockIdx.x * blockDim.x + threadIdx.x = y * W + x.
// Consecutive threads take consecutive x, so every tap's loads and the store are coalesced; the
// block's channel is fixed, so its k x k weights are loaded once per thread (into registers for
// LVT's k = 3) and shared by all dilations, and the centre tap, common to all dilations, is read
// once.
//
// Compiles with nvcc and NVRTC: the device side includes only <cuda_fp16.h> (and kernel_io.h).
#include <cuda_fp16.h>

#include "../common/kernel_io.h"

namespace
{

// The dilations travel as this many int32 kernel arguments (RasaOp::kMaxDilations), unused ones 0.
constexpr int kMaxDilations = 8;

using litevit::device::loadFloat;
using litevit::device::storeFloat;

__device__ __forceinline__ float silu(float x)
{
    return x / (1.0f + expf(-x));
}

// One output element. kFixedSize > 0 is a compile-time kernel size (unrolled taps, weights in
// registers); kFixedSize == 0 handles any odd size, reading the weights through L1 per tap.
template <typename T, int kFixedSize>
__device__ __forceinline__ void rasaOutput(const T* __restrict__ q, const T* __restrict__ weight,
    T* __restrict__ out, int channels, int height, int width, int kernelSize, int numDilations,
    const int (&dilations)[kMaxDilations])
{
    const int pixels = height * width;
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= pixels)
    {
        return;
    }
    const int channel = blockIdx.y;
    const int batch = blockIdx.z;
    const int y = pixel / width;
    const int x = pixel - y * width;
    const size_t plane = (static_cast<size_t>(batch) * channels + channel) * pixels;
    const T* qPlane = q + plane;

    const int size = kFixedSize > 0 ? kFixedSize : kernelSize;
    const int radius = size / 2;
    const T* channelWeight = weight + static_cast<size_t>(channel) * size * size;
    float fixedWeights[kFixedSize > 0 ? kFixedSize * kFixedSize : 1];
    if constexpr (kFixedSize > 0)
    {
#pragma unroll
        for (int tap = 0; tap < kFixedSize * kFixedSize; ++tap)
        {
            fixedWeights[tap] = loadFloat(channelWeight + tap);
        }
    }
    const auto weightAt = [&](int tap)
    {
        if constexpr (kFixedSize > 0)
        {
            return fixedWeights[tap];
        }
        else
        {
            return loadFloat(channelWeight + tap);
        }
    };

    const float centre = weightAt(radius * size + radius) * loadFloat(qPlane + pixel);
    float result = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxDilations; ++i)
    {
        if (i >= numDilations)
        {
            break;
        }
        const int dilation = dilations[i];
        float sum = centre;
        for (int ky = 0; ky < size; ++ky)
        {
            const int sourceY = y + (ky - radius) * dilation;
            if (static_cast<unsigned>(sourceY) >= static_cast<unsigned>(height))
            {
                continue;
            }
            const T* row = qPlane + sourceY * width;
            for (int kx = 0; kx < size; ++kx)
            {
                const int sourceX = x + (kx - radius) * dilation;
                if ((ky == radius && kx == radius) || static_cast<unsigned>(sourceX) >= static_cast<unsigned>(width))
                {
                    continue;
                }
                sum += weightAt(ky * size + kx) * loadFloat(row + sourceX);
            }
        }
        result += silu(sum);
    }
    storeFloat(out + plane + pixel, result);
}

template <typename T>
__device__ __forceinline__ void rasa(const T* __restrict__ q, const T* __restrict__ weight, T* __restrict__ out,
    int channels, int height, int width, int kernelSize, int numDilations, const int (&dilations)[kMaxDilations])
{
    // The branch is uniform over the grid; k = 3 is LVT's only size.
    if (kernelSize == 3)
    {
        rasaOutput<T, 3>(q, weight, out, channels, height, width, kernelSize, numDilations, dilations);
    }
    else
    {
        rasaOutput<T, 0>(q, weight, out, channels, height, width, kernelSize, numDilations, dilations);
    }
}

} // namespace

// Arguments: q (B, C, H, W), weight (C, 1, k, k), out (B, C, H, W), then the int32 scalars of
// RasaOp::launch: C, H, W, k, the number of dilations and kMaxDilations dilation slots.
extern "C" __global__ void __launch_bounds__(256) litevit_rasa_f32(const float* __restrict__ q,
    const float* __restrict__ weight, float* __restrict__ out, int channels, int height, int width, int kernel_size,
    int num_dilations, int dilation0, int dilation1, int dilation2, int dilation3, int dilation4, int dilation5,
    int dilation6, int dilation7)
{
    const int dilations[kMaxDilations]
        = {dilation0, dilation1, dilation2, dilation3, dilation4, dilation5, dilation6, dilation7};
    rasa<float>(q, weight, out, channels, height, width, kernel_size, num_dilations, dilations);
}

extern "C" __global__ void __launch_bounds__(256) litevit_rasa_f16(const __half* __restrict__ q,
    const __half* __restrict__ weight, __half* __restrict__ out, int channels, int height, int width,
    int kernel_size, int num_dilations, int dilation0, int dilation1, int dilation2, int dilation3, int dilation4,
    int dilation5, int dilation6, int dilation7)
{
    const int dilations[kMaxDilations]
        = {dilation0, dilation1, dilation2, dilation3, dilation4, dilation5, dilation6, dilation7};
    rasa<__half>(q, weight, out, channels, height, width, kernel_size, num_dilations, dilations);
}

#ifndef __CUDACC_RTC__
#include "rasa_core.h"

namespace litevit
{

static_assert(kMaxDilations == RasaOp::kMaxDilations, "the kernel's dilation slots must match RasaOp's");

const KernelPair& rasaKernels()
{
    static const KernelPair kernels{reinterpret_cast<const void*>(litevit_rasa_f32),
        reinterpret_cast<const void*>(litevit_rasa_f16)};
    return kernels;
}

} // namespace litevit
#endif
