// Small helpers the op cores (plugins/<op>/<op>_core.cpp) share: refusal-sentence formatting,
// attribute lookup and the CUDA/int32 limits their launches check. Plain C++17, header-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "op_core.h"

namespace litevit
{
namespace core
{

// The most blocks a CUDA grid takes along y and z.
constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Python's repr of a tuple of ints, so that refusals read like the reference's ValueErrors.
inline std::string pythonTuple(const std::vector<int64_t>& values)
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
inline std::string pythonList(const std::vector<int32_t>& values)
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

// An attribute that must be present: "<op> needs the attribute <name>." otherwise.
inline const std::vector<int32_t>& requiredAttribute(
    const AttributeMap& attributes, const std::string& op, const std::string& name)
{
    const auto found = attributes.find(name);
    if (found == attributes.end())
    {
        throw std::invalid_argument(op + " needs the attribute " + name + ".");
    }
    return found->second;
}

// An attribute that must be present with exactly one value:
// "<op>'s <name> attribute must be one integer; got <n> values." otherwise.
inline int32_t scalarAttribute(const AttributeMap& attributes, const std::string& op, const std::string& name)
{
    const std::vector<int32_t>& values = requiredAttribute(attributes, op, name);
    if (values.size() != 1)
    {
        throw std::invalid_argument(
            op + "'s " + name + " attribute must be one integer; got " + std::to_string(values.size()) + " values.");
    }
    return values[0];
}

// Threads per block for planes of `pixels` elements: the fewest blocks of at most `maxThreads`
// threads, each rounded up to whole warps. (plugins/kernels.py's plane_threads_per_block mirrors it.)
inline int64_t planeThreadsPerBlock(int64_t pixels, int64_t maxThreads)
{
    const int64_t blocks = std::max<int64_t>(1, (pixels + maxThreads - 1) / maxThreads);
    const int64_t threads = (pixels + blocks - 1) / blocks;
    return std::max<int64_t>(32, (threads + 31) / 32 * 32);
}

// One thread per pixel of a plane: grid (ceil(pixels / threads), gridY, gridZ), block (threads,
// 1, 1) with threads from planeThreadsPerBlock, no dynamic shared memory. The caller has checked
// gridY and gridZ against kMaxGridYZ. (plugins/kernels.py's plane_launch mirrors it.)
inline Launch planeLaunch(
    int64_t pixels, int64_t maxThreads, int64_t gridY, int64_t gridZ, std::vector<int32_t> scalars)
{
    const int64_t threads = planeThreadsPerBlock(pixels, maxThreads);
    Launch launch{};
    launch.grid[0] = static_cast<uint32_t>((pixels + threads - 1) / threads);
    launch.grid[1] = static_cast<uint32_t>(gridY);
    launch.grid[2] = static_cast<uint32_t>(gridZ);
    launch.block[0] = static_cast<uint32_t>(threads);
    launch.block[1] = 1;
    launch.block[2] = 1;
    launch.shared_bytes = 0;
    launch.scalars = std::move(scalars);
    return launch;
}

} // namespace core
} // namespace litevit
