#include "rasa_core.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <utility>

#include "../common/core_util.h"

namespace litevit
{
using core::kInt32Max;
using core::kMaxGridYZ;
using core::pythonList;
using core::pythonTuple;

RasaOp::RasaOp(std::vector<int32_t> dilations, int32_t kernelSize)
    : mDilations(std::move(dilations))
    , mKernelSize(kernelSize)
{
}

const std::vector<std::string>& RasaOp::attributeNames()
{
    static const std::vector<std::string> names{"dilations", "kernel_size"};
    return names;
}

RasaOp RasaOp::fromAttributes(const AttributeMap& attributes)
{
    // Both attributes must be present before kernel_size's count is checked (the reference's order).
    core::requiredAttribute(attributes, kName, "kernel_size");
    const std::vector<int32_t>& dilations = core::requiredAttribute(attributes, kName, "dilations");
    const int32_t size = core::scalarAttribute(attributes, kName, "kernel_size");
    if (size < 1 || size % 2 == 0)
    {
        throw std::invalid_argument(
            "RASA needs an odd kernel_size (same-size output); got " + std::to_string(size) + ".");
    }
    if (dilations.empty() || std::any_of(dilations.begin(), dilations.end(), [](int32_t d) { return d < 1; }))
    {
        throw std::invalid_argument("RASA needs a non-empty list of dilations >= 1; got " + pythonList(dilations) + ".");
    }
    if (dilations.size() > static_cast<size_t>(kMaxDilations))
    {
        throw std::invalid_argument("RASA's kernel takes at most " + std::to_string(kMaxDilations)
            + " dilations; got " + std::to_string(dilations.size()) + ".");
    }
    return RasaOp(dilations, size);
}

AttributeMap RasaOp::attributes() const
{
    return {{"dilations", mDilations}, {"kernel_size", {mKernelSize}}};
}

void RasaOp::checkInputs(const std::vector<Shape>& inputs) const
{
    core::requireInputCount(kName, {"q", "weight"}, inputs);
    const std::vector<int64_t>& q = inputs[0].dims;
    const std::vector<int64_t>& weight = inputs[1].dims;
    if (q.size() != 4)
    {
        throw std::invalid_argument("RASA takes a 4-D (B, C, H, W) query; got shape " + pythonTuple(q) + ".");
    }
    const std::vector<int64_t> expectedWeight{q[1], 1, mKernelSize, mKernelSize};
    if (!core::mayEqual(expectedWeight, weight))
    {
        throw std::invalid_argument("RASA weight must have shape " + pythonTuple(expectedWeight) + " for query "
            + pythonTuple(q) + "; got " + pythonTuple(weight) + ".");
    }
}

std::vector<AffineDim> RasaOp::outputDims() const
{
    return core::sameShapeAs(0, 4);
}

Launch RasaOp::launch(const std::vector<Shape>& inputs) const
{
    checkInputs(inputs);
    core::requireKnownDims(kName, {"a query", "a weight"}, inputs);
    const std::vector<int64_t>& q = inputs[0].dims;
    const int64_t batch = q[0];
    const int64_t channels = q[1];
    const int64_t height = q[2];
    const int64_t width = q[3];
    if (batch > kMaxGridYZ || channels > kMaxGridYZ)
    {
        throw std::invalid_argument("RASA's launch takes at most 65535 batches and 65535 channels (CUDA grid y, z); got "
            + pythonTuple(q) + ".");
    }
    // The kernel indexes within a plane and a weight with int32.
    const int64_t reach = int64_t{mKernelSize / 2} * *std::max_element(mDilations.begin(), mDilations.end());
    if (height * width > kInt32Max || std::max(height, width) + reach > kInt32Max
        || int64_t{mKernelSize} * mKernelSize > kInt32Max)
    {
        throw std::invalid_argument("RASA's kernel indexes with int32: H*W, k*k and H or W plus (k//2)*dilation "
            "must stay below 2^31; got query " + pythonTuple(q) + ".");
    }
    std::vector<int32_t> scalars{static_cast<int32_t>(channels), static_cast<int32_t>(height),
        static_cast<int32_t>(width), mKernelSize, static_cast<int32_t>(mDilations.size())};
    for (int i = 0; i < kMaxDilations; ++i)
    {
        scalars.push_back(i < static_cast<int>(mDilations.size()) ? mDilations[i] : 0);
    }
    return core::planeLaunch(height * width, kMaxThreadsPerBlock, channels, batch, std::move(scalars));
}

std::vector<std::array<int64_t, 4>> RasaOp::outputsOfThread(
    const Launch& launch, const std::array<uint32_t, 3>& block, const std::array<uint32_t, 3>& thread)
{
    // rasa_kernel.cu, rasaOutput(): scalars (C, H, W, ...), pixel from x, channel y, batch z.
    const int64_t height = launch.scalars.at(1);
    const int64_t width = launch.scalars.at(2);
    const int64_t pixel = core::planePixel(launch, block, thread, height * width);
    if (pixel < 0)
    {
        return {};
    }
    const int64_t y = pixel / width;
    return {{int64_t{block[2]}, int64_t{block[1]}, y, pixel - y * width}};
}

} // namespace litevit
