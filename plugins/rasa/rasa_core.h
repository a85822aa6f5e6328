// RASA's TensorRT-independent plugin core: attributes, input checks, output shape and launch.
//
// Plain C++17 (no CUDA, no TensorRT), so CI compiles and unit-tests it with g++. The contract is
// litevit/ops/rasa.py: inputs q (B, C, H, W) and the shared depthwise weight (C, 1, k, k),
// attributes dilations (ints >= 1) and kernel_size (odd k), output (B, C, H, W).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../common/op_core.h"

namespace litevit
{

class RasaOp
{
public:
    static constexpr const char* kName = "RASA";
    static constexpr int kNumInputs = 2;
    // The kernel takes the dilations as this many int32 arguments (unused slots 0).
    static constexpr int kMaxDilations = 8;
    // Threads per block at most; rasa_kernel.cu declares the same __launch_bounds__.
    static constexpr int kMaxThreadsPerBlock = 256;

    // The exported node also carries `channels` (the group count of its ONNX function body's
    // Conv); the plugin takes C from q's shape instead.
    static const std::vector<std::string>& attributeNames();
    static RasaOp fromAttributes(const AttributeMap& attributes);
    AttributeMap attributes() const;
    void checkInputs(const std::vector<Shape>& inputs) const;
    // (B, C, H, W) of q.
    std::vector<AffineDim> outputDims() const;
    // One thread per output element: grid (ceil(H*W / threads), C, B), block (threads, 1, 1)
    // (core::planeLaunch); scalars (C, H, W, k, number of dilations, kMaxDilations dilation slots).
    // Limits: C and B <= 65535 (CUDA grid); H*W, k*k, max(H, W) + (k/2) * max dilation < 2^31 (int32).
    Launch launch(const std::vector<Shape>& inputs) const;
    static std::vector<std::array<int64_t, 4>> outputsOfThread(
        const Launch& launch, const std::array<uint32_t, 3>& block, const std::array<uint32_t, 3>& thread);

    const std::vector<int32_t>& dilations() const
    {
        return mDilations;
    }

    int32_t kernelSize() const
    {
        return mKernelSize;
    }

private:
    RasaOp(std::vector<int32_t> dilations, int32_t kernelSize);

    std::vector<int32_t> mDilations;
    int32_t mKernelSize;
};

// The FP32/FP16 kernels (defined in rasa_kernel.cu) for the generic launcher.
const KernelPair& rasaKernels();

} // namespace litevit
