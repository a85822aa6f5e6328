// Small helpers the op cores (plugins/<op>/<op>_core.cpp) share: refusal-sentence formatting,
// attribute lookup and the CUDA/int32 limits their launches check. Plain C++17, header-only.
#pragma once

#include <algorithm>
#include <array>
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

// TensorRT's value for a dimension that is not known while the engine is built (it is fixed at run
// time). checkInputs checks every relation whose dims are all known and leaves the others to run
// time; launch needs every dim known. Any negative dim counts as not known there, so that a bad
// concrete dim reaches launch's refusal.
constexpr int64_t kUnknownDim = -1;

inline bool isKnown(int64_t dim)
{
    return dim >= 0;
}

inline bool allKnown(const std::vector<int64_t>& dims)
{
    return std::all_of(dims.begin(), dims.end(), isKnown);
}

// Whether `actual` can still turn out to be `expected`: the same rank, and equal dims wherever
// both are known.
inline bool mayEqual(const std::vector<int64_t>& expected, const std::vector<int64_t>& actual)
{
    if (expected.size() != actual.size())
    {
        return false;
    }
    for (size_t i = 0; i < expected.size(); ++i)
    {
        if (isKnown(expected[i]) && isKnown(actual[i]) && expected[i] != actual[i])
        {
            return false;
        }
    }
    return true;
}

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

// "<op> takes <n> inputs (<names>); got <count>." unless there are as many inputs as names.
inline void requireInputCount(const std::string& op, const std::vector<std::string>& names, const std::vector<Shape>& inputs)
{
    if (inputs.size() != names.size())
    {
        std::string list;
        for (const std::string& name : names)
        {
            list += (list.empty() ? "" : ", ") + name;
        }
        throw std::invalid_argument(op + " takes " + std::to_string(names.size()) + " inputs (" + list + "); got "
            + std::to_string(inputs.size()) + ".");
    }
}

// Every dim of every input known, as a launch needs: "<op> cannot launch for <what> with negative
// dims; got <shape>." for the first that is not (`what` names each input as the sentence reads).
inline void requireKnownDims(const std::string& op, const std::vector<std::string>& what, const std::vector<Shape>& inputs)
{
    for (size_t i = 0; i < inputs.size() && i < what.size(); ++i)
    {
        if (!allKnown(inputs[i].dims))
        {
            throw std::invalid_argument(
                op + " cannot launch for " + what[i] + " with negative dims; got " + pythonTuple(inputs[i].dims) + ".");
        }
    }
}

// The output rules of an op whose output has the shape of its input `input` (`rank` dims).
inline std::vector<AffineDim> sameShapeAs(int input, int rank)
{
    std::vector<AffineDim> dims;
    for (int axis = 0; axis < rank; ++axis)
    {
        dims.push_back(AffineDim{input, axis, 1, 0});
    }
    return dims;
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

// The pixel (offset in its H*W plane) that thread `thread` of block `block` of a planeLaunch
// computes, as the kernels compute it; -1 for the idle threads of a plane's last block.
inline int64_t planePixel(
    const Launch& launch, const std::array<uint32_t, 3>& block, const std::array<uint32_t, 3>& thread, int64_t pixels)
{
    const int64_t pixel = int64_t{block[0]} * launch.block[0] + thread[0];
    return pixel < pixels ? pixel : -1;
}

} // namespace core
} // namespace litevit
