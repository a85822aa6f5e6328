// The types every litevit op core shares with the generic TensorRT glue and launcher.
//
// An op core (plugins/<op>/<op>_core.h) is plain C++17: no CUDA, no TensorRT. It validates the
// node's attributes and input shapes, gives the output shape as affine rules of the input dims
// (what TensorRT's IExprBuilder needs for dynamic shapes) and the launch configuration of its
// kernel. plugins/kernels.py mirrors these types in Python, plugins/<op>/spec.py each core.
//
// What every op class (CsaOp, RasaOp, GhostHeadOp) provides to the glue (trt_glue.h), each
// refusal a std::invalid_argument of one sentence:
//   kName, kNumInputs                 the ONNX op_type and input count;
//   attributeNames()                  the node attributes the plugin reads (its plugin fields);
//   fromAttributes(map) / attributes() the validated op from the fields, and back (serialization);
//   checkInputs(shapes)               refuses shapes the kernel cannot take, checking whatever is
//                                     known: a dim the engine knows only at run time is
//                                     core::kUnknownDim there (build time) and checked once known;
//   outputDims()                      the output dims as AffineDim rules of the input dims;
//   launch(shapes)                    checkInputs, every dim known, the CUDA grid and int32 limits;
//                                     then the grid, block, shared memory and scalars.
// Ops with one thread per pixel of a plane (RASA, GhostHead) also give outputsOfThread(launch,
// block, thread): the output elements (b, c, y, x) that thread writes, computed as the kernel
// computes them, so that the tests check that a launch writes every output element exactly once.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace litevit
{

// Every litevit attribute is an int or a list of ints (the ONNX parser hands them over as kINT32).
using AttributeMap = std::map<std::string, std::vector<int32_t>>;

struct Shape
{
    std::vector<int64_t> dims;
};

// Output dim = scale * inputs[input].dims[axis] + offset; scale 0 means the constant offset.
struct AffineDim
{
    int input;
    int axis;
    int64_t scale;
    int64_t offset;
};

// Grid, block, dynamic shared memory and the int32 kernel arguments after the pointers, in order.
struct Launch
{
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t shared_bytes;
    std::vector<int32_t> scalars;
};

enum class DataKind
{
    kFloat32,
    kFloat16
};

// The FP32 and FP16 instantiations of one op's kernel, as host-side function handles.
struct KernelPair
{
    const void* f32;
    const void* f16;
};

} // namespace litevit
