// CSA's per-thread work: which output element a thread owns and the gather that computes it.
//
// Shared by the CUDA kernel (csa_kernel.cu, through nvcc and NVRTC) and the host side (csa_core,
// the g++ tests), so the tests enumerate and emulate exactly the index math the kernel runs.
// No includes but <cuda_fp16.h> under CUDA: NVRTC compiles this without a C++ standard library.
//
// Thread mapping: a 1-D grid of 1-D blocks (kBlockSize threads); thread t of block b owns the
// output element at NCHW offset b * blockDim + t, i.e. (batch, channel, oy, ox) with ox fastest,
// so a warp reads and writes consecutive columns. Threads past the last element do nothing.
// Every offset is below 2^31 (the core refuses larger tensors), so int arithmetic is exact.
//
// Gather: output (b, c, oy, ox) is the sum, over the windows (y, x) whose target offset
// (ki, kj) = (oy + p - s*y, ox + p - s*x) lies inside the k x k window, of
//     sum_j attn[b, (h*k^2 + ki*k + kj)*k^2 + j, y, x] * values[b, j*C + c, y, x],  h = c / (C/heads):
// the per-window aggregation and the overlapping fold-sum in one pass, without atomics.
#pragma once

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define LITEVIT_CSA_HD __host__ __device__ __forceinline__
#else
#define LITEVIT_CSA_HD inline
#endif

namespace litevit
{
namespace csa
{

constexpr int kBlockSize = 256;

// Sizes and attributes one launch works on, from the kernel's int32 scalars.
struct Geometry
{
    int batch;
    int channels;
    int heads;
    int kernel_size;
    int stride;
    int padding;
    int windows_h; // H'
    int windows_w; // W'
    int out_h;
    int out_w;
};

// Rows (or columns) of the fold-sum's output: every non-negative position some window reaches.
LITEVIT_CSA_HD int foldSize(int windows, int kernel_size, int stride, int padding)
{
    return stride * (windows - 1) + kernel_size - padding;
}

// The kernel's scalars, in the order it takes them (and CsaOp::launch() gives them).
LITEVIT_CSA_HD Geometry makeGeometry(int batch, int channels, int heads, int kernel_size, int stride,
    int padding, int windows_h, int windows_w)
{
    return Geometry{batch, channels, heads, kernel_size, stride, padding, windows_h, windows_w,
        foldSize(windows_h, kernel_size, stride, padding), foldSize(windows_w, kernel_size, stride, padding)};
}

LITEVIT_CSA_HD int outputCount(const Geometry& g)
{
    return g.batch * g.channels * g.out_h * g.out_w;
}

// One output element: its NCHW coordinates and offset.
struct Element
{
    int batch;
    int channel;
    int oy;
    int ox;
    int offset;
};

// The element thread `thread` of block `block` (of `block_dim` threads) owns; false for the
// threads past the end.
LITEVIT_CSA_HD bool threadElement(
    const Geometry& g, unsigned block, unsigned block_dim, unsigned thread, Element& element)
{
    const unsigned offset = block * block_dim + thread;
    if (offset >= static_cast<unsigned>(outputCount(g)))
    {
        return false;
    }
    int rest = static_cast<int>(offset);
    element.offset = rest;
    element.ox = rest % g.out_w;
    rest /= g.out_w;
    element.oy = rest % g.out_h;
    rest /= g.out_h;
    element.channel = rest % g.channels;
    element.batch = rest / g.channels;
    return true;
}

// The windows w (first..last, empty when first > last) along one axis whose target offset
// t = position + padding - stride * w lies in [0, kernel_size), i.e. that put a value at `position`.
LITEVIT_CSA_HD void coveringWindows(
    int position, int windows, int kernel_size, int stride, int padding, int& first, int& last)
{
    const int reach = position + padding; // >= 0: the output starts at the first unpadded row
    first = reach >= kernel_size ? (reach - kernel_size) / stride + 1 : 0;
    last = reach / stride < windows - 1 ? reach / stride : windows - 1;
}

LITEVIT_CSA_HD float toFloat(float value)
{
    return value;
}

#if defined(__CUDACC__)
LITEVIT_CSA_HD float toFloat(__half value)
{
    return __half2float(value);
}
#endif

// The value of output element `e`, accumulated in float whatever T is.
template <typename T>
LITEVIT_CSA_HD float gatherElement(
    const Geometry& g, const T* __restrict__ attn, const T* __restrict__ values, const Element& e)
{
    const int taps = g.kernel_size * g.kernel_size;
    const int plane = g.windows_h * g.windows_w;
    const int head = e.channel / (g.channels / g.heads);
    // attn[b, (head*k^2 + i)*k^2 + j] and values[b, j*C + c] at j = 0; source j steps by these.
    const T* attn_head = attn + (e.batch * g.heads + head) * taps * taps * plane;
    const T* values_channel = values + (e.batch * taps * g.channels + e.channel) * plane;
    const int values_step = g.channels * plane;

    int y_first;
    int y_last;
    int x_first;
    int x_last;
    coveringWindows(e.oy, g.windows_h, g.kernel_size, g.stride, g.padding, y_first, y_last);
    coveringWindows(e.ox, g.windows_w, g.kernel_size, g.stride, g.padding, x_first, x_last);
    float sum = 0.0f;
    for (int y = y_first; y <= y_last; ++y)
    {
        const int ki = e.oy + g.padding - g.stride * y;
        for (int x = x_first; x <= x_last; ++x)
        {
            const int kj = e.ox + g.padding - g.stride * x;
            const int pixel = y * g.windows_w + x;
            const T* weights = attn_head + (ki * g.kernel_size + kj) * taps * plane + pixel;
            const T* sources = values_channel + pixel;
            for (int j = 0; j < taps; ++j)
            {
                sum += toFloat(weights[j * plane]) * toFloat(sources[j * values_step]);
            }
        }
    }
    return sum;
}

} // namespace csa
} // namespace litevit
