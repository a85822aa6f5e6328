// What the TensorRT plugin classes of every release share: logging, plugin fields <-> attributes,
// build-time shape checks, output dims from AffineDim rules, the format rule and the enqueue path
// over an op core.
//
// Compiled against the real headers of TensorRT 8.5.3, 8.6.1, 10.3.0, 10.4.0 and 11.1 (with a stub
// libnvinfer: .ci/plugins, tests/plugins/test_trt_harness.py); never loaded by a real TensorRT.
// Release differences are guarded with LITEVIT_TRT_AT_LEAST / NV_TENSORRT_MAJOR.
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

#include "core_util.h"
#include "launch.h"
#include "op_core.h"
#include "serialize.h"

#define LITEVIT_TRT_AT_LEAST(major, minor)                                                                        \
    (NV_TENSORRT_MAJOR > (major) || (NV_TENSORRT_MAJOR == (major) && NV_TENSORRT_MINOR >= (minor)))

// Around one use of an interface that a TensorRT release marks deprecated and that we still need
// there; every use says which release deprecates what and why. Never file- or build-wide.
#define LITEVIT_DEPRECATED_USE_BEGIN                                                                              \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define LITEVIT_DEPRECATED_USE_END _Pragma("GCC diagnostic pop")

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

// The creator's getFieldNames(): one kINT32 array per attribute the op reads. The ONNX parser of
// every release (onnx-tensorrt's loadFields, 8.5-GA to 10.1-GA) passes exactly these, in this order,
// converting an INT attribute to one kINT32 and INTS to a kINT32 array; other types keep their own.
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

// How a field type reads in a refusal (an ONNX FLOAT attribute becomes kFLOAT32, STRING kCHAR).
inline const char* fieldTypeName(nvinfer1::PluginFieldType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginFieldType::kFLOAT16: return "kFLOAT16";
    case nvinfer1::PluginFieldType::kFLOAT32: return "kFLOAT32";
    case nvinfer1::PluginFieldType::kFLOAT64: return "kFLOAT64";
    case nvinfer1::PluginFieldType::kINT8: return "kINT8";
    case nvinfer1::PluginFieldType::kINT16: return "kINT16";
    case nvinfer1::PluginFieldType::kINT32: return "kINT32";
    case nvinfer1::PluginFieldType::kCHAR: return "kCHAR";
    case nvinfer1::PluginFieldType::kDIMS: return "kDIMS";
    case nvinfer1::PluginFieldType::kUNKNOWN: return "kUNKNOWN";
    default: return "a type this library does not know";
    }
}

// The attributes among the fields (what the ONNX parser built from the node); fields the op does not
// read are skipped, a missing one is left to the op's fromAttributes to name.
inline AttributeMap attributesFromFields(
    const nvinfer1::PluginFieldCollection* fields, const std::vector<std::string>& names)
{
    AttributeMap attributes;
    if (fields == nullptr || (fields->nbFields > 0 && fields->fields == nullptr))
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
        if (field.type != nvinfer1::PluginFieldType::kINT32)
        {
            throw std::invalid_argument("attribute '" + name + "' must be an ONNX int or ints (kINT32 plugin data); got "
                + fieldTypeName(field.type) + ".");
        }
        if (field.length < 0 || (field.length > 0 && field.data == nullptr))
        {
            throw std::invalid_argument("attribute '" + name + "' has no data for its " + std::to_string(field.length)
                + " values.");
        }
        const auto* values = static_cast<const int32_t*>(field.data);
        attributes[name] = std::vector<int32_t>(values, values + field.length);
    }
    return attributes;
}

// Dims as the core sees them; TensorRT's -1 (a dim fixed at run time) is core::kUnknownDim.
inline Shape shapeOf(const nvinfer1::Dims& dims)
{
    Shape shape;
    for (int32_t axis = 0; axis < dims.nbDims; ++axis)
    {
        shape.dims.push_back(static_cast<int64_t>(dims.d[axis]));
    }
    return shape;
}

// What is known of input dims while the network is built: the constant expressions' values,
// core::kUnknownDim for the symbolic ones.
inline std::vector<Shape> knownShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs)
{
    std::vector<Shape> shapes;
    for (int32_t i = 0; i < nbInputs; ++i)
    {
        Shape shape;
        for (int32_t axis = 0; axis < inputs[i].nbDims; ++axis)
        {
            const nvinfer1::IDimensionExpr* dim = inputs[i].d[axis];
            shape.dims.push_back(
                dim != nullptr && dim->isConstant() ? static_cast<int64_t>(dim->getConstantValue()) : core::kUnknownDim);
        }
        shapes.push_back(std::move(shape));
    }
    return shapes;
}

// The shapes of an optimisation profile (configurePlugin): the dims as far as fixed for every
// profile (the core's checks), then its minimum and its maximum shapes, which are all known (the
// launch's checks too: grid and int32 limits); throws the core's sentence, saying which.
template <typename Op>
void checkProfileShapes(const Op& op, const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nbInputs)
{
    std::vector<Shape> fixed;
    std::vector<Shape> smallest;
    std::vector<Shape> largest;
    for (int32_t i = 0; i < nbInputs; ++i)
    {
        fixed.push_back(shapeOf(inputs[i].desc.dims));
        smallest.push_back(shapeOf(inputs[i].min));
        largest.push_back(shapeOf(inputs[i].max));
    }
    op.checkInputs(fixed);
    for (const auto& [shapes, which] : {std::make_pair(&smallest, " (the profile's minimum shapes)"),
             std::make_pair(&largest, " (the profile's maximum shapes)")})
    {
        try
        {
            static_cast<void>(op.launch(*shapes));
        }
        catch (const std::invalid_argument& error)
        {
            throw std::invalid_argument(std::string(error.what()) + which);
        }
    }
}

// FP32 and FP16 linear, every input and the output of one type: the rule for I/O position pos
// given the (already chosen) description of position 0. The kernels exist for exactly these
// (KernelPair: f32, f16; NCHW indexing); nothing else is accepted, INT8 included.
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

// The first build-time refusal of one plugin instance (and of its clones): logged once, in one
// line naming the node; afterwards the plugin accepts no format, so TensorRT cannot build it.
class Refusal
{
public:
    // Logs describe(opName, layer, what) unless this instance has refused already.
    void refuse(const char* opName, const std::string& layer, const char* what) noexcept
    {
        if (refused_)
        {
            return;
        }
        refused_ = true;
        logError(describe(opName, layer, what));
    }

    bool refused() const noexcept
    {
        return refused_;
    }

private:
    bool refused_ = false;
};

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

    const Op& op() const noexcept
    {
        return op_;
    }

    const std::vector<char>& serialized() const noexcept
    {
        return serialized_;
    }

    // Checks what is known of the input dims while the network is built (their constant
    // expressions); throws the core's sentence.
    void checkKnownInputs(const nvinfer1::DimsExprs* inputs, int32_t nbInputs) const
    {
        op_.checkInputs(knownShapes(inputs, inputs != nullptr ? nbInputs : 0));
    }

    // Output dims as expressions of the input dims (dynamic shapes); throws on a rule the inputs
    // cannot serve.
    nvinfer1::DimsExprs outputDims(
        const nvinfer1::DimsExprs* inputs, int32_t nbInputs, nvinfer1::IExprBuilder& builder) const
    {
        if (nbInputs != Op::kNumInputs || inputs == nullptr)
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

    // Validates the shapes (when they changed) and launches the kernel of the input's type: 0, or
    // 1 after handing report the one-sentence reason.
    template <typename Report>
    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const void* const* inputs, void* const* outputs,
        cudaStream_t stream, Report&& report) noexcept
    {
        try
        {
            std::vector<Shape> shapes;
            for (int i = 0; i < Op::kNumInputs; ++i)
            {
                shapes.push_back(shapeOf(inputDesc[i].dims));
            }
            if (!launchValid_ || !sameShapes(shapes, launchShapes_))
            {
                launch_ = op_.launch(shapes);
                launchShapes_ = std::move(shapes);
                launchValid_ = true;
            }
            const DataKind kind
                = inputDesc[0].type == nvinfer1::DataType::kHALF ? DataKind::kFloat16 : DataKind::kFloat32;
            const cudaError_t status
                = launchKernel(Kernels(), kind, launch_, inputs, Op::kNumInputs, outputs[0], stream);
            if (status != cudaSuccess)
            {
                throw std::runtime_error(std::string("kernel launch failed: ") + cudaGetErrorString(status) + ".");
            }
            return 0;
        }
        catch (const std::exception& error)
        {
            report(error.what());
            return 1;
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
