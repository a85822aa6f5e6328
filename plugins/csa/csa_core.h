// CSA's plugin core: attributes, shape rules and kernel launch, in plain C++17 (no CUDA, no
// TensorRT), so that the TensorRT glue stays generic and everything here is unit-tested with g++.
//
// The op (litevit/ops/csa.py, whose reference csa() this matches): attn (B, heads*k^4, H', W')
// and values (B, k^2*C, H', W') -> (B, C, s*(H'-1)+k-p, s*(W'-1)+k-p), per-window attention
// aggregation plus the overlapping fold-sum.
//
// Attributes (ONNX node, kINT32 plugin fields, one value each): heads, kernel_size (k), stride (s),
// padding (p), channels (C). C is what the output's channel dim is; the other input dims give it
// only as values' k^2*C, and the output-shape rules (AffineDim) have no division.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common/op_core.h"

namespace litevit
{

// The CSA node as the TensorRT glue sees it (see plugins/common/op_core.h for the contract).
class CsaOp
{
public:
    static constexpr const char* kName = "CSA";
    static constexpr int kNumInputs = 2;

    // heads, kernel_size, stride, padding, channels.
    static const std::vector<std::string>& attributeNames();
    static CsaOp fromAttributes(const AttributeMap& attributes);
    AttributeMap attributes() const;
    // attn (B, heads*k^4, H', W') and values (B, k^2*C, H', W'), every tensor, output included, below
    // 2^31 elements (the kernel indexes with int32).
    void checkInputs(const std::vector<Shape>& inputs) const;
    // (B from values, C, s*H' + k-p-s, s*W' + k-p-s).
    std::vector<AffineDim> outputDims() const;
    // A 1-D grid of csa::kBlockSize-thread blocks with one thread per output element
    // (csa::threadElement), no shared memory, scalars (B, C, heads, k, s, p, H', W'). An empty
    // output gives grid 0: nothing to launch.
    Launch launch(const std::vector<Shape>& inputs) const;

private:
    CsaOp(int32_t heads, int32_t kernelSize, int32_t stride, int32_t padding, int32_t channels);

    int32_t heads_;
    int32_t kernelSize_;
    int32_t stride_;
    int32_t padding_;
    int32_t channels_;
};

// The kernel's FP32/FP16 instantiations for the generic launcher (defined in csa_kernel.cu).
const KernelPair& csaKernels();

} // namespace litevit
