#include "rasa_core.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace litevit
{
namespace
{

constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Python's repr of a tuple of ints, so that refusals read like litevit.ops.rasa's ValueErrors.
std::string pythonTuple(const std::vector<int64_t>& values)
{
    std::ostringstream text;
    text << '(';
    for (size_t i = 0; i < values.size(); ++i)
    {
        text << (i ? ", " : "") << values[i];
    }
    text << (values.size() == 1 ? ",)" : ")");
    return text.str();
}

// Python's repr of a list of ints.
std::string pythonList(const std::vector<int32_t>& values)
{
    std::ostringstream text;
    text << '[';
    for (size_t i = 0; i < values.size(); ++i)
    {
        text << (i ? ", " : "") << values[i];
    }
    text << ']';
    return text.str();
}

const std::vector<int32_t>& requiredAttribute(const AttributeMap& attributes, const std::string& name)
{
    const auto found = attributes.find(name);
    if (found == attributes.end())
    {
        throw std::invalid_argument("RASA needs the attribute " + name + ".");
    }
    return found->second;
}

// Threads per block for planes of `pixels` elements: the fewest blocks of at most
// kMaxThreadsPerBlock threads, each rounded up to whole warps. (spec.py mirrors it.)
int64_t threadsPerBlock(int64_t pixels)
{
    const int64_t maxThreads = RasaOp::kMaxThreadsPerBlock;
    const int64_t blocks = std::max<int64_t>(1, (pixels + maxThreads - 1) / maxThreads);
    const int64_t threads = (pixels + blocks - 1) / blocks;
    return std::max<int64_t>(32, (threads + 31) / 32 * 32);
}

} // namespace

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
    const std::vector<int32_t>& kernelSize = requiredAttribute(attributes, "kernel_size");
    const std::vector<int32_t>& dilations = requiredAttribute(attributes, "dilations");
    if (kernelSize.size() != 1)
    {
        throw std::invalid_argument(
            "RASA's kernel_size attribute must be one integer; got " + std::to_string(kernelSize.size()) + " values.");
    }
    const int32_t size = kernelSize[0];
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
    if (inputs.size() != static_cast<size_t>(kNumInputs))
    {
        throw std::invalid_argument(
            "RASA takes 2 inputs (q, weight); got " + std::to_string(inputs.size()) + ".");
    }
    const std::vector<int64_t>& q = inputs[0].dims;
    const std::vector<int64_t>& weight = inputs[1].dims;
    if (q.size() != 4)
    {
        throw std::invalid_argument("RASA takes a 4-D (B, C, H, W) query; got shape " + pythonTuple(q) + ".");
    }
    const std::vector<int64_t> expectedWeight{q[1], 1, mKernelSize, mKernelSize};
    if (weight != expectedWeight)
    {
        throw std::invalid_argument("RASA weight must have shape " + pythonTuple(expectedWeight) + " for query "
            + pythonTuple(q) + "; got " + pythonTuple(weight) + ".");
    }
}

std::vector<AffineDim> RasaOp::outputDims() const
{
    return {{0, 0, 1, 0}, {0, 1, 1, 0}, {0, 2, 1, 0}, {0, 3, 1, 0}};
}

Launch RasaOp::launch(const std::vector<Shape>& inputs) const
{
    checkInputs(inputs);
    const std::vector<int64_t>& q = inputs[0].dims;
    if (std::any_of(q.begin(), q.end(), [](int64_t d) { return d < 0; }))
    {
        throw std::invalid_argument("RASA cannot launch for a query with negative dims; got " + pythonTuple(q) + ".");
    }
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
    const int64_t pixels = height * width;
    const int64_t threads = threadsPerBlock(pixels);
    Launch launch{};
    launch.grid[0] = static_cast<uint32_t>((pixels + threads - 1) / threads);
    launch.grid[1] = static_cast<uint32_t>(channels);
    launch.grid[2] = static_cast<uint32_t>(batch);
    launch.block[0] = static_cast<uint32_t>(threads);
    launch.block[1] = 1;
    launch.block[2] = 1;
    launch.shared_bytes = 0;
    launch.scalars = {static_cast<int32_t>(channels), static_cast<int32_t>(height), static_cast<int32_t>(width),
        mKernelSize, static_cast<int32_t>(mDilations.size())};
    for (int i = 0; i < kMaxDilations; ++i)
    {
        launch.scalars.push_back(i < static_cast<int>(mDilations.size()) ? mDilations[i] : 0);
    }
    return launch;
}

std::vector<std::array<int64_t, 4>> RasaOp::outputsOfThread(
    const Launch& launch, const std::array<uint32_t, 3>& block, const std::array<uint32_t, 3>& thread)
{
    // rasa_kernel.cu, rasaOutput(): scalars (C, H, W, ...), pixel from x, channel y, batch z.
    const int64_t height = launch.scalars.at(1);
    const int64_t width = launch.scalars.at(2);
    const int64_t pixel = int64_t{block[0]} * launch.block[0] + thread[0];
    if (pixel >= height * width)
    {
        return {};
    }
    const int64_t y = pixel / width;
    return {{int64_t{block[2]}, int64_t{block[1]}, y, pixel - y * width}};
}

} // namespace litevit
