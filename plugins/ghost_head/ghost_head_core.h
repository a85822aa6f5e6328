// GhostHead's TensorRT-independent plugin core: attributes, input checks, output shape and launch.
//
// Plain C++17 (no CUDA, no TensorRT), so CI compiles and unit-tests it with g++. The contract is
// litevit/ops/ghost_head.py: inputs v (B, C, H, W), attn (B, G*k*k, H, W), ghost_mul (C, k, k),
// ghost_add (C, k, k); attributes heads (G, divides C), kernel_size (odd k), dilation (d >= 1);
// output (B, C, H, W).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../common/op_core.h"

namespace litevit
{

class GhostHeadOp
{
public:
    static constexpr const char* kName = "GhostHead";
    static constexpr int kNumInputs = 4;
    // Channels of one head that one thread aggregates (sharing its attn loads); a block's threads
    // all work on the same chunk of channels.
    static constexpr int kChannelsPerThread = 8;
    // Threads per block at most; ghost_head_kernel.cu declares the same __launch_bounds__.
    static constexpr int kMaxThreadsPerBlock = 256;

    static const std::vector<std::string>& attributeNames();
    static GhostHeadOp fromAttributes(const AttributeMap& attributes);
    AttributeMap attributes() const;
    void checkInputs(const std::vector<Shape>& inputs) const;
    // (B, C, H, W) of v.
    std::vector<AffineDim> outputDims() const;
    // grid (ceil(H*W / threads), G * ceil((C/G) / kChannelsPerThread), B), block (threads, 1, 1)
    // (core::planeLaunch; the kernel's 4 KiB of shared memory are static); scalars (C, H, W, G, k, d).
    // Limits: B and G * ceil((C/G) / 8) <= 65535 (CUDA grid); C, 8*H*W, 8*k*k and
    // max(H, W) + (k/2) * d < 2^31 (int32).
    Launch launch(const std::vector<Shape>& inputs) const;
    static std::vector<std::array<int64_t, 4>> outputsOfThread(
        const Launch& launch, const std::array<uint32_t, 3>& block, const std::array<uint32_t, 3>& thread);

    int32_t heads() const
    {
        return mHeads;
    }

    int32_t kernelSize() const
    {
        return mKernelSize;
    }

    int32_t dilation() const
    {
        return mDilation;
    }

private:
    GhostHeadOp(int32_t heads, int32_t kernelSize, int32_t dilation);

    int32_t mHeads;
    int32_t mKernelSize;
    int32_t mDilation;
};

// The FP32/FP16 kernels (defined in ghost_head_kernel.cu) for the generic launcher.
const KernelPair& ghostHeadKernels();

} // namespace litevit
