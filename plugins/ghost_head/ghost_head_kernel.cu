// GhostHead: ELSA's local aggregation with ghost heads (litevit/ops/ghost_head.py).
//
//     out[b, c, y, x] = sum_{t = ky*k + kx} v[b, c, y + (ky - k/2) * d, x + (kx - k/2) * d]
//                       * (attn[b, g*k*k + t, y, x] * ghost_mul[c, t] + ghost_add[c, t])
//
// with g = c / (C / G) and zero padding outside the map. The decomposed graph runs k*k
// shifted-slice multiply-adds, each a pass over (B, C, H, W); this kernel does the whole k*k sum
// in one pass.
//
// Thread mapping (GhostHeadOp::launch and GhostHeadOp::outputsOfThread mirror it):
//   blockIdx.z = b;
//   blockIdx.y = g * chunksPerHead + j: the block's channels are channels j*8 .. j*8+7 of head g
//                (kChannelsPerThread = 8; the last chunk of a head may be shorter);
//   blockIdx.x * blockDim.x + threadIdx.x = y * W + x.
// Each thread writes the outputs of its pixel for the block's channels. Consecutive threads take
// consecutive x (coalesced loads and stores). attn, the dominant input for k = 7 (G*k*k planes
// against C planes of v), is loaded once per tap and used for all channels of the chunk, and the
// (ghost_mul, ghost_add) pairs of the block's channels are staged in shared memory, kTapsPerStage
// taps at a time, so any k fits in a fixed 4 KiB.
//
// Compiles with nvcc and NVRTC: the device side includes only <cuda_fp16.h> (and kernel_io.h).
#include <cuda_fp16.h>

#include "../common/kernel_io.h"

namespace
{

// Channels of one head per thread (GhostHeadOp::kChannelsPerThread).
constexpr int kChannelsPerThread = 8;
// Taps of the ghost matrices staged in shared memory at a time.
constexpr int kTapsPerStage = 64;

using litevit::device::loadFloat;
using litevit::device::storeFloat;

// The whole k*k sum for one pixel and the block's chunk of `count` channels, whose v planes start
// at vChunk, each `pixels` apart. With kFullChunk (every chunk of ELSA's 32-channel heads) all
// kChannelsPerThread slots are channels and no slot needs a check.
template <typename T, bool kFullChunk>
__device__ __forceinline__ void aggregate(const T* __restrict__ vChunk, const T* __restrict__ attnTap,
    const T* __restrict__ mulRows, const T* __restrict__ addRows, T* __restrict__ outChunk, int count, int pixel,
    int height, int width, int kernelSize, int dilation, float2 (&mulAdd)[kChannelsPerThread][kTapsPerStage])
{
    const int pixels = height * width;
    const bool active = pixel < pixels; // idle threads still stage the ghost matrices
    const int y = pixel / width;
    const int x = pixel - y * width;
    const int taps = kernelSize * kernelSize;
    const int radius = kernelSize / 2;
    const auto isChannel = [count](int slot) { return kFullChunk || slot < count; };

    float sums[kChannelsPerThread] = {};
    int ky = 0;
    int kx = 0;
    for (int stageStart = 0; stageStart < taps; stageStart += kTapsPerStage)
    {
        const int stageTaps = min(kTapsPerStage, taps - stageStart);
        if (stageStart > 0)
        {
            __syncthreads(); // everyone is done with the previous stage
        }
        for (int i = threadIdx.x; i < count * stageTaps; i += blockDim.x)
        {
            const int slot = i / stageTaps;
            const int tap = stageStart + i - slot * stageTaps;
            mulAdd[slot][tap - stageStart]
                = make_float2(loadFloat(mulRows + slot * taps + tap), loadFloat(addRows + slot * taps + tap));
        }
        __syncthreads();
        if (!active)
        {
            continue;
        }
        for (int tap = 0; tap < stageTaps; ++tap, attnTap += pixels)
        {
            const int sourceY = y + (ky - radius) * dilation;
            const int sourceX = x + (kx - radius) * dilation;
            if (++kx == kernelSize)
            {
                kx = 0;
                ++ky;
            }
            if (static_cast<unsigned>(sourceY) >= static_cast<unsigned>(height)
                || static_cast<unsigned>(sourceX) >= static_cast<unsigned>(width))
            {
                continue; // zero padding: the tap adds nothing
            }
            const float weight = loadFloat(attnTap);
            const int source = sourceY * width + sourceX;
#pragma unroll
            for (int slot = 0; slot < kChannelsPerThread; ++slot)
            {
                if (isChannel(slot))
                {
                    const float2 filter = mulAdd[slot][tap];
                    // int offset: the core keeps kChannelsPerThread * H * W below 2^31.
                    sums[slot] += loadFloat(vChunk + (slot * pixels + source)) * fmaf(weight, filter.x, filter.y);
                }
            }
        }
    }
    if (!active)
    {
        return;
    }
#pragma unroll
    for (int slot = 0; slot < kChannelsPerThread; ++slot)
    {
        if (isChannel(slot))
        {
            storeFloat(outChunk + (slot * pixels + pixel), sums[slot]);
        }
    }
}

template <typename T>
__device__ __forceinline__ void ghostHead(const T* __restrict__ v, const T* __restrict__ attn,
    const T* __restrict__ ghostMul, const T* __restrict__ ghostAdd, T* __restrict__ out, int channels, int height,
    int width, int heads, int kernelSize, int dilation)
{
    // (ghost_mul, ghost_add) of the block's channels for the current stage of taps.
    __shared__ float2 mulAdd[kChannelsPerThread][kTapsPerStage];

    const int pixels = height * width;
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    const int headChannels = channels / heads;
    const int chunksPerHead = (headChannels + kChannelsPerThread - 1) / kChannelsPerThread;
    const int head = blockIdx.y / chunksPerHead;
    const int firstInHead = (blockIdx.y - head * chunksPerHead) * kChannelsPerThread;
    const int count = min(kChannelsPerThread, headChannels - firstInHead);
    const int firstChannel = head * headChannels + firstInHead;
    const int batch = blockIdx.z;
    const int taps = kernelSize * kernelSize;

    const size_t chunkOffset = (static_cast<size_t>(batch) * channels + firstChannel) * pixels;
    // attn[b, head*k*k + t, y, x] for t = 0; aggregate() advances it by one plane per tap.
    const T* attnTap = attn + (static_cast<size_t>(batch) * heads + head) * taps * pixels + pixel;
    const T* mulRows = ghostMul + static_cast<size_t>(firstChannel) * taps;
    const T* addRows = ghostAdd + static_cast<size_t>(firstChannel) * taps;
    // count is the same for the whole block, so both branches keep __syncthreads block-uniform.
    if (count == kChannelsPerThread)
    {
        aggregate<T, true>(v + chunkOffset, attnTap, mulRows, addRows, out + chunkOffset, count, pixel, height, width,
            kernelSize, dilation, mulAdd);
    }
    else
    {
        aggregate<T, false>(v + chunkOffset, attnTap, mulRows, addRows, out + chunkOffset, count, pixel, height,
            width, kernelSize, dilation, mulAdd);
    }
}

} // namespace

// Arguments: v (B, C, H, W), attn (B, G*k*k, H, W), ghost_mul (C, k, k), ghost_add (C, k, k),
// out (B, C, H, W), then the int32 scalars of GhostHeadOp::launch: C, H, W, G, k, d.
extern "C" __global__ void __launch_bounds__(256) litevit_ghost_head_f32(const float* __restrict__ v,
    const float* __restrict__ attn, const float* __restrict__ ghost_mul, const float* __restrict__ ghost_add,
    float* __restrict__ out, int channels, int height, int width, int heads, int kernel_size, int dilation)
{
    ghostHead<float>(v, attn, ghost_mul, ghost_add, out, channels, height, width, heads, kernel_size, dilation);
}

extern "C" __global__ void __launch_bounds__(256) litevit_ghost_head_f16(const __half* __restrict__ v,
    const __half* __restrict__ attn, const __half* __restrict__ ghost_mul, const __half* __restrict__ ghost_add,
    __half* __restrict__ out, int channels, int height, int width, int heads, int kernel_size, int dilation)
{
    ghostHead<__half>(v, attn, ghost_mul, ghost_add, out, channels, height, width, heads, kernel_size, dilation);
}

#ifndef __CUDACC_RTC__
#include "ghost_head_core.h"

namespace litevit
{

static_assert(kChannelsPerThread == GhostHeadOp::kChannelsPerThread, "the kernel's channel chunk must match GhostHeadOp's");

const KernelPair& ghostHeadKernels()
{
    static const KernelPair kernels{reinterpret_cast<const void*>(litevit_ghost_head_f32),
        reinterpret_cast<const void*>(litevit_ghost_head_f16)};
    return kernels;
}

} // namespace litevit
#endif
