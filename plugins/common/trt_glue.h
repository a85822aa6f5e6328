// What the TensorRT plugin classes of every version share: logging, plugin fields <-> attributes,
// output dims from AffineDim rules, the format rule and the enqueue path over an op core.
//
// NEVER COMPILED HERE: no TensorRT headers exist on the development machines or in CI (no package
// reachable there ships them). Written against the documented API of NvInferRuntime.h,
// NvInferRuntimePlugin.h (10.x) / NvInferRuntimeCommon.h (8.x) and NvInferPluginBase.h (10.x); it is
// first compiled by CMake on the target (`litevit plugins build`). Version differences are guarded
// with NV_TENSORRT_MAJOR / NV_TENSORRT_MINOR.
#pragma once

#include <NvInferVersion.h>

#include <NvInferRuntime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "launch.h"
#include "op_core.h"
#include "serialize.h"

#define LITEVIT_TRT_AT_LEAST(major, minor)                                                                        \
    (NV_TENSORRT_MAJOR > (major) || (NV_TENSORRT_MAJOR == (major) && NV_TENSORRT_MINOR >= (minor)))

namespace litevit::trt
{

// The ONNX parser looks a node up as (op_type, plugin_version, plugin_namespace).
constexpr const char* kPluginNamespace = "litevit";
constexpr const char* kPluginVersion = "1";

// IExprBuilder::constant takes int32_t before TensorRT 10 and int64_t from 10.0 (Dims became Dims64).
#if NV_TENSORRT_MAJOR >= 10
using DimValue = int64_t;
#else
using DimValue = int32_t;
#endif

#if LITEVIT_TRT_AT_LEAST(8, 6)
// Set by setLoggerFinder() when TensorRT loads the library itself (IPluginRegistry::loadLibrary,
// trtexec --dynamicPlugins); ILoggerFinder exists from TensorRT 8.6.
inline std::atomic<nvinfer1::ILoggerFinder*>& loggerFinder() noexcept
{
    static std::atomic<nvinfer1::ILoggerFinder*> finder{nullptr};
    return finder;
}
#endif

// Reports an error through the logger of the builder/runtime that called the plugin (else
// TensorRT's global logger, else stderr). Plugin methods are noexcept: nothing is thrown past here.
inline void logError(const std::string& message) noexcept
{
    nvinfer1::ILogger* logger = nullptr;
#if LITEVIT_TRT_AT_LEAST(8, 6)
    if (nvinfer1::ILoggerFinder* finder = loggerFinder().load())
    {
        logger = finder->findLogger();
    }
#endif
    if (logger == nullptr)
    {
        logger = ::getLogger();
    }
    if (logger != nullptr)
    {
        logger->log(nvinfer1::ILogger::Severity::kERROR, message.c_str());
    }
    else
    {
        std::fprintf(stderr, "[litevit plugins] %s\n", message.c_str());
    }
}

// "litevit CSA plugin 'node name': what went wrong"; never throws.
inline std::string describe(const char* opName, const std::string& layer, const char* what) noexcept
{
    try
    {
        return std::string("litevit ") + opName + " plugin '" + layer + "': " + what;
    }
    catch (...)
    {
        return what;
    }
}

// The creator's getFieldNames(): one kINT32 array per attribute the op reads (the parser passes only
// these, as kINT32; ints and int lists alike).
class FieldNames
{
public:
    explicit FieldNames(const std::vector<std::string>& names)
        : names_(names)
    {
        for (const std::string& name : names_)
        {
            fields_.emplace_back(name.c_str(), nullptr, nvinfer1::PluginFieldType::kINT32, 0);
        }
        collection_.nbFields = static_cast<int32_t>(fields_.size());
        collection_.fields = fields_.data();
    }

    FieldNames(const FieldNames&) = delete;
    FieldNames& operator=(const FieldNames&) = delete;

    const nvinfer1::PluginFieldCollection* collection() const noexcept
    {
        return &collection_;
    }

private:
    std::vector<std::string> names_; // owns the strings fields_ point into
    std::vector<nvinfer1::PluginField> fields_;
    nvinfer1::PluginFieldCollection collection_{};
};

// The attributes among the fields (what the ONNX parser built from the node); fields the op does not
// read are skipped, a missing one is left to the op's fromAttributes to name.
inline AttributeMap attributesFromFields(
    const nvinfer1::PluginFieldCollection* fields, const std::vector<std::string>& names)
{
    AttributeMap attributes;
    if (fields == nullptr)
    {
        return attributes;
    }
    for (int32_t i = 0; i < fields->nbFields; ++i)
    {
        const nvinfer1::PluginField& field = fields->fields[i];
        if (field.name == nullptr)
        {
            continue;
        }
        const std::string name(field.name);
        if (std::find(names.begin(), names.end(), name) == names.end())
        {
            continue;
        }
        if (field.type != nvinfer1::PluginFieldType::kINT32 || field.length < 0
            || (field.length > 0 && field.data == nullptr))
        {
            throw std::invalid_argument("attribute '" + name + "' must be an int32 array.");
        }
        const auto* values = static_cast<const int32_t*>(field.data);
        attributes[name] = std::vector<int32_t>(values, values + field.length);
    }
    return attributes;
}

inline Shape shapeOf(const nvinfer1::Dims& dims)
{
    Shape shape;
    for (int32_t axis = 0; axis < dims.nbDims; ++axis)
    {
        shape.dims.push_back(static_cast<int64_t>(dims.d[axis]));
    }
    return shape;
}

// FP32 and FP16 linear, every input and the output of one type: the rule for I/O position pos
// given the (already chosen) description of position 0.
inline bool supportedIo(
    int32_t pos, const nvinfer1::PluginTensorDesc& desc, const nvinfer1::PluginTensorDesc& first) noexcept
{
    if (desc.format != nvinfer1::TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 0)
    {
        return desc.type == nvinfer1::DataType::kFLOAT || desc.type == nvinfer1::DataType::kHALF;
    }
    return desc.type == first.type;
}

// What one plugin instance holds whatever the interface: the validated op, its serialized
// attributes and the launch of the last input shapes seen.
template <typename Op, const KernelPair& (*Kernels)()>
class OpInstance
{
public:
    explicit OpInstance(Op op)
        : op_(std::move(op))
        , serialized_(serializeAttributes(op_.attributes()))
    {
    }

    const std::vector<char>& serialized() const noexcept
    {
        return serialized_;
    }

    // Output dims as expressions of the input dims (dynamic shapes); throws on a rule the inputs
    // cannot satisfy.
    nvinfer1::DimsExprs outputDims(
        const nvinfer1::DimsExprs* inputs, int32_t nbInputs, nvinfer1::IExprBuilder& builder) const
    {
        if (nbInputs != Op::kNumInputs)
        {
            throw std::invalid_argument("takes " + std::to_string(Op::kNumInputs) + " inputs, got "
                + std::to_string(nbInputs) + ".");
        }
        const std::vector<AffineDim> rules = op_.outputDims();
        nvinfer1::DimsExprs out{};
        if (rules.size() > static_cast<size_t>(nvinfer1::Dims::MAX_DIMS))
        {
            throw std::invalid_argument("has an output of more dims than TensorRT allows.");
        }
        out.nbDims = static_cast<int32_t>(rules.size());
        for (size_t axis = 0; axis < rules.size(); ++axis)
        {
            const AffineDim& rule = rules[axis];
            if (rule.scale == 0)
            {
                out.d[axis] = builder.constant(static_cast<DimValue>(rule.offset));
                continue;
            }
            if (rule.input < 0 || rule.input >= nbInputs || rule.axis < 0 || rule.axis >= inputs[rule.input].nbDims)
            {
                throw std::invalid_argument("input " + std::to_string(rule.input) + " has no axis "
                    + std::to_string(rule.axis) + " for output dim " + std::to_string(axis) + ".");
            }
            const nvinfer1::IDimensionExpr* dim = inputs[rule.input].d[rule.axis];
            if (rule.scale != 1)
            {
                dim = builder.operation(nvinfer1::DimensionOperation::kPROD, *dim,
                    *builder.constant(static_cast<DimValue>(rule.scale)));
            }
            if (rule.offset != 0)
            {
                dim = builder.operation(nvinfer1::DimensionOperation::kSUM, *dim,
                    *builder.constant(static_cast<DimValue>(rule.offset)));
            }
            out.d[axis] = dim;
        }
        return out;
    }

    // Validates the shapes (when they changed) and launches the kernel of the input's type.
    void enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const void* const* inputs, void* const* outputs,
        cudaStream_t stream)
    {
        std::vector<Shape> shapes;
        for (int i = 0; i < Op::kNumInputs; ++i)
        {
            shapes.push_back(shapeOf(inputDesc[i].dims));
        }
        if (!launchValid_ || !sameShapes(shapes, launchShapes_))
        {
            op_.checkInputs(shapes);
            launch_ = op_.launch(shapes);
            launchShapes_ = std::move(shapes);
            launchValid_ = true;
        }
        const DataKind kind
            = inputDesc[0].type == nvinfer1::DataType::kHALF ? DataKind::kFloat16 : DataKind::kFloat32;
        const cudaError_t status = launchKernel(Kernels(), kind, launch_, inputs, Op::kNumInputs, outputs[0], stream);
        if (status != cudaSuccess)
        {
            throw std::runtime_error(std::string("kernel launch failed: ") + cudaGetErrorString(status) + ".");
        }
    }

private:
    static bool sameShapes(const std::vector<Shape>& a, const std::vector<Shape>& b)
    {
        if (a.size() != b.size())
        {
            return false;
        }
        for (size_t i = 0; i < a.size(); ++i)
        {
            if (a[i].dims != b[i].dims)
            {
                return false;
            }
        }
        return true;
    }

    Op op_;
    std::vector<char> serialized_;
    std::vector<Shape> launchShapes_;
    Launch launch_{};
    bool launchValid_ = false;
};

} // namespace litevit::trt
