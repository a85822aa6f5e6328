#include "csa_core.h"

#include <cstddef>
#include <stdexcept>

#include "../common/core_util.h"
#include "csa_gather.h"

namespace litevit
{
using core::pythonTuple;

namespace
{

// The kernel indexes with int32: every tensor must have fewer elements than this.
constexpr int64_t kIndexLimit = int64_t{1} << 31;

// The element count of non-negative dims, saturated at kIndexLimit (so it cannot overflow).
int64_t elementCount(const std::vector<int64_t>& dims)
{
    for (const int64_t dim : dims)
    {
        if (dim == 0)
        {
            return 0;
        }
    }
    int64_t count = 1;
    for (const int64_t dim : dims)
    {
        if (dim >= kIndexLimit || count * dim >= kIndexLimit)
        {
            return kIndexLimit;
        }
        count *= dim;
    }
    return count;
}

int32_t requireOne(const AttributeMap& attributes, const std::string& name)
{
    const auto found = attributes.find(name);
    if (found == attributes.end())
    {
        throw std::invalid_argument("CSA needs the integer attribute '" + name + "'.");
    }
    if (found->second.size() != 1)
    {
        throw std::invalid_argument("CSA attribute '" + name + "' must be one integer; got "
            + std::to_string(found->second.size()) + " values.");
    }
    return found->second[0];
}

} // namespace

CsaOp::CsaOp(int32_t heads, int32_t kernelSize, int32_t stride, int32_t padding, int32_t channels)
    : heads_(heads)
    , kernelSize_(kernelSize)
    , stride_(stride)
    , padding_(padding)
    , channels_(channels)
{
}

const std::vector<std::string>& CsaOp::attributeNames()
{
    static const std::vector<std::string> names{"heads", "kernel_size", "stride", "padding", "channels"};
    return names;
}

CsaOp CsaOp::fromAttributes(const AttributeMap& attributes)
{
    const int32_t heads = requireOne(attributes, "heads");
    const int32_t kernelSize = requireOne(attributes, "kernel_size");
    const int32_t stride = requireOne(attributes, "stride");
    const int32_t padding = requireOne(attributes, "padding");
    const int32_t channels = requireOne(attributes, "channels");
    if (kernelSize < 1 || stride < 1 || padding < 0 || padding >= kernelSize || heads < 1)
    {
        throw std::invalid_argument(
            "CSA needs kernel_size, stride, heads >= 1 and 0 <= padding < kernel_size; got kernel_size="
            + std::to_string(kernelSize) + ", stride=" + std::to_string(stride) + ", padding="
            + std::to_string(padding) + ", heads=" + std::to_string(heads) + ".");
    }
    if (channels < 1 || channels % heads != 0)
    {
        throw std::invalid_argument("CSA needs channels >= 1 divisible by heads=" + std::to_string(heads)
            + "; got channels=" + std::to_string(channels) + ".");
    }
    // attn has heads*k^4 channels and values k^2*C: both must be int32 channel counts. k < 2^8
    // here, so k^4 itself cannot overflow int64.
    const int64_t taps = int64_t{kernelSize} * kernelSize;
    if (kernelSize >= 256 || heads * taps * taps >= kIndexLimit || channels * taps >= kIndexLimit)
    {
        throw std::invalid_argument("CSA needs heads·k⁴ and k²·channels below 2^31; got heads="
            + std::to_string(heads) + ", kernel_size=" + std::to_string(kernelSize)
            + ", channels=" + std::to_string(channels) + ".");
    }
    return CsaOp(heads, kernelSize, stride, padding, channels);
}

AttributeMap CsaOp::attributes() const
{
    return AttributeMap{{"heads", {heads_}}, {"kernel_size", {kernelSize_}}, {"stride", {stride_}},
        {"padding", {padding_}}, {"channels", {channels_}}};
}

void CsaOp::checkInputs(const std::vector<Shape>& inputs) const
{
    core::requireInputCount(kName, {"attn", "values"}, inputs);
    const std::vector<int64_t>& attn = inputs[0].dims;
    const std::vector<int64_t>& values = inputs[1].dims;
    if (attn.size() != 4 || values.size() != 4)
    {
        throw std::invalid_argument("CSA takes 4-D attn and values; got shapes " + pythonTuple(attn) + " and "
            + pythonTuple(values) + ".");
    }
    const int64_t taps = int64_t{kernelSize_} * kernelSize_;
    if (core::isKnown(values[1]) && values[1] != taps * channels_)
    {
        throw std::invalid_argument("CSA values need k²·channels = " + std::to_string(taps * channels_)
            + " channels for channels=" + std::to_string(channels_) + "; got " + std::to_string(values[1])
            + ".");
    }
    const std::vector<int64_t> expectedAttn{values[0], heads_ * taps * taps, values[2], values[3]};
    if (!core::mayEqual(expectedAttn, attn))
    {
        throw std::invalid_argument("CSA attn must have shape " + pythonTuple(expectedAttn) + " for values "
            + pythonTuple(values) + "; got " + pythonTuple(attn) + ".");
    }
    // s*(H'-1) + k - p < 0 only for H' = 0 with s > k - p.
    if ((values[2] == 0 || values[3] == 0) && stride_ > kernelSize_ - padding_)
    {
        throw std::invalid_argument("CSA needs H', W' >= 1 when stride > kernel_size - padding; got values "
            + pythonTuple(values) + ".");
    }
    if (!core::allKnown(attn) || !core::allKnown(values))
    {
        return; // the sizes below are checked once every dim is known
    }
    // Below the limit, H' and W' are below 2^31 and the output sizes cannot overflow int64.
    if (elementCount(attn) >= kIndexLimit || elementCount(values) >= kIndexLimit)
    {
        throw std::invalid_argument("CSA needs attn and values below 2^31 elements (int32 indexing); got "
            + pythonTuple(attn) + " and " + pythonTuple(values) + ".");
    }
    const int64_t lastReach = int64_t{kernelSize_} - padding_; // output rows past the last window's start
    const std::vector<int64_t> output{
        values[0], channels_, stride_ * (values[2] - 1) + lastReach, stride_ * (values[3] - 1) + lastReach};
    if (elementCount(output) >= kIndexLimit)
    {
        throw std::invalid_argument("CSA needs its output below 2^31 elements (int32 indexing); got "
            + pythonTuple(output) + " for values " + pythonTuple(values) + ".");
    }
}

std::vector<AffineDim> CsaOp::outputDims() const
{
    const int64_t offset = int64_t{kernelSize_} - padding_ - stride_;
    return {AffineDim{1, 0, 1, 0}, AffineDim{1, 1, 0, channels_}, AffineDim{1, 2, stride_, offset},
        AffineDim{1, 3, stride_, offset}};
}

Launch CsaOp::launch(const std::vector<Shape>& inputs) const
{
    checkInputs(inputs);
    const std::vector<int64_t>& values = inputs[1].dims;
    if (!core::allKnown(inputs[0].dims) || !core::allKnown(values))
    {
        throw std::invalid_argument("CSA needs known, non-negative input sizes; got shapes "
            + pythonTuple(inputs[0].dims) + " and " + pythonTuple(values) + ".");
    }
    // checkInputs bounded every dim below 2^31.
    const std::vector<int32_t> scalars{static_cast<int32_t>(values[0]), channels_, heads_, kernelSize_,
        stride_, padding_, static_cast<int32_t>(values[2]), static_cast<int32_t>(values[3])};
    const csa::Geometry geometry = csa::makeGeometry(
        scalars[0], scalars[1], scalars[2], scalars[3], scalars[4], scalars[5], scalars[6], scalars[7]);
    const int64_t count = csa::outputCount(geometry);
    const auto blocks = static_cast<uint32_t>((count + csa::kBlockSize - 1) / csa::kBlockSize);
    return Launch{{blocks, 1, 1}, {static_cast<uint32_t>(csa::kBlockSize), 1, 1}, 0, scalars};
}

} // namespace litevit
