#include "ghost_head_core.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>

#include "../common/core_util.h"

namespace litevit
{
using core::kInt32Max;
using core::kMaxGridYZ;
using core::pythonTuple;

namespace
{

int64_t chunksPerHead(int64_t headChannels)
{
    return (headChannels + GhostHeadOp::kChannelsPerThread - 1) / GhostHeadOp::kChannelsPerThread;
}

} // namespace

GhostHeadOp::GhostHeadOp(int32_t heads, int32_t kernelSize, int32_t dilation)
    : mHeads(heads)
    , mKernelSize(kernelSize)
    , mDilation(dilation)
{
}

const std::vector<std::string>& GhostHeadOp::attributeNames()
{
    static const std::vector<std::string> names{"heads", "kernel_size", "dilation"};
    return names;
}

GhostHeadOp GhostHeadOp::fromAttributes(const AttributeMap& attributes)
{
    const int32_t heads = core::scalarAttribute(attributes, kName, "heads");
    const int32_t kernelSize = core::scalarAttribute(attributes, kName, "kernel_size");
    const int32_t dilation = core::scalarAttribute(attributes, kName, "dilation");
    if (kernelSize < 1 || kernelSize % 2 == 0)
    {
        throw std::invalid_argument(
            "GhostHead: kernel_size must be odd and positive; got " + std::to_string(kernelSize) + ".");
    }
    if (dilation < 1)
    {
        throw std::invalid_argument("GhostHead: dilation must be >= 1; got " + std::to_string(dilation) + ".");
    }
    if (heads < 1)
    {
        throw std::invalid_argument("GhostHead: heads must be >= 1; got " + std::to_string(heads) + ".");
    }
    return GhostHeadOp(heads, kernelSize, dilation);
}

AttributeMap GhostHeadOp::attributes() const
{
    return {{"heads", {mHeads}}, {"kernel_size", {mKernelSize}}, {"dilation", {mDilation}}};
}

void GhostHeadOp::checkInputs(const std::vector<Shape>& inputs) const
{
    core::requireInputCount(kName, {"v", "attn", "ghost_mul", "ghost_add"}, inputs);
    const std::vector<int64_t>& v = inputs[0].dims;
    if (v.size() != 4)
    {
        throw std::invalid_argument("GhostHead: v must be (B, C, H, W); got " + pythonTuple(v) + ".");
    }
    const int64_t channels = v[1];
    if (core::isKnown(channels) && channels % mHeads != 0)
    {
        throw std::invalid_argument("GhostHead: heads (" + std::to_string(mHeads) + ") must divide the "
            + std::to_string(channels) + " channels of v.");
    }
    const int64_t size = mKernelSize;
    const std::vector<int64_t> expectedAttn{v[0], mHeads * size * size, v[2], v[3]};
    if (!core::mayEqual(expectedAttn, inputs[1].dims))
    {
        throw std::invalid_argument("GhostHead: attn must be " + pythonTuple(expectedAttn)
            + " (B, heads*k*k, H, W); got " + pythonTuple(inputs[1].dims) + ".");
    }
    const std::vector<int64_t> expectedGhost{channels, size, size};
    const char* ghostNames[] = {"ghost_mul", "ghost_add"};
    for (int i = 0; i < 2; ++i)
    {
        if (!core::mayEqual(expectedGhost, inputs[2 + i].dims))
        {
            throw std::invalid_argument(std::string("GhostHead: ") + ghostNames[i] + " must be "
                + pythonTuple(expectedGhost) + " (C, k, k); got " + pythonTuple(inputs[2 + i].dims) + ".");
        }
    }
}

std::vector<AffineDim> GhostHeadOp::outputDims() const
{
    return core::sameShapeAs(0, 4);
}

Launch GhostHeadOp::launch(const std::vector<Shape>& inputs) const
{
    checkInputs(inputs);
    core::requireKnownDims(kName, {"v", "attn", "ghost_mul", "ghost_add"}, inputs);
    const std::vector<int64_t>& v = inputs[0].dims;
    const int64_t batch = v[0];
    const int64_t channels = v[1];
    const int64_t height = v[2];
    const int64_t width = v[3];
    const int64_t channelBlocks = mHeads * chunksPerHead(channels / mHeads);
    if (batch > kMaxGridYZ || channelBlocks > kMaxGridYZ)
    {
        throw std::invalid_argument("GhostHead's launch takes at most 65535 batches and 65535 blocks of 8 channels "
            "of one head (CUDA grid y, z); got v " + pythonTuple(v) + " with " + std::to_string(mHeads) + " heads.");
    }
    // The kernel indexes within a chunk of channel planes and of ghost matrix rows with int32.
    const int64_t reach = int64_t{mKernelSize / 2} * mDilation;
    if (channels > kInt32Max || kChannelsPerThread * height * width > kInt32Max
        || std::max(height, width) + reach > kInt32Max
        || int64_t{mKernelSize} * mKernelSize * kChannelsPerThread > kInt32Max)
    {
        throw std::invalid_argument("GhostHead's kernel indexes with int32: C, 8*H*W, 8*k*k and H or W plus "
            "(k//2)*dilation must stay below 2^31; got v " + pythonTuple(v) + ".");
    }
    return core::planeLaunch(height * width, kMaxThreadsPerBlock, channelBlocks, batch,
        {static_cast<int32_t>(channels), static_cast<int32_t>(height), static_cast<int32_t>(width), mHeads,
            mKernelSize, mDilation});
}

std::vector<std::array<int64_t, 4>> GhostHeadOp::outputsOfThread(
    const Launch& launch, const std::array<uint32_t, 3>& block, const std::array<uint32_t, 3>& thread)
{
    // ghost_head_kernel.cu, ghostHead(): scalars (C, H, W, G, ...), pixel from x, head and chunk
    // from y, batch z.
    const int64_t channels = launch.scalars.at(0);
    const int64_t height = launch.scalars.at(1);
    const int64_t width = launch.scalars.at(2);
    const int64_t heads = launch.scalars.at(3);
    const int64_t pixel = core::planePixel(launch, block, thread, height * width);
    if (pixel < 0)
    {
        return {};
    }
    const int64_t y = pixel / width;
    const int64_t x = pixel - y * width;
    const int64_t headChannels = channels / heads;
    const int64_t chunks = chunksPerHead(headChannels);
    const int64_t head = block[1] / chunks;
    const int64_t firstInHead = (block[1] - head * chunks) * kChannelsPerThread;
    const int64_t count = std::min<int64_t>(kChannelsPerThread, headChannels - firstInHead);
    std::vector<std::array<int64_t, 4>> outputs;
    for (int64_t slot = 0; slot < count; ++slot)
    {
        outputs.push_back({int64_t{block[2]}, head * headChannels + firstInHead + slot, y, x});
    }
    return outputs;
}

} // namespace litevit
