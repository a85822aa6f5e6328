// IPluginV3 (IPluginV3OneCore/Build/Runtime) + IPluginCreatorV3One over an op core: the plugin
// interface of TensorRT >= 10.0 (V100's 10.4, JetPack 6.1+'s 10.3, JetPack 7, TensorRT 11).
//
// Shapes the kernels cannot take are refused while the engine is built, in one logged line naming
// the node, through the error returns IPluginV3 offers: getOutputShapes (the dims the network
// fixes), configurePlugin (the profile's fixed dims, minimum and maximum shapes); onShapeChange
// checks the run-time shapes before enqueue.
#pragma once

#include "trt_glue.h"

#if NV_TENSORRT_MAJOR < 10
#error "trt_plugin_v3.h needs TensorRT 10 or newer (IPluginV3); TensorRT 8.x builds use trt_plugin_v2.h."
#endif

namespace litevit::trt
{

// The one field getFieldsToSerialize() hands TensorRT: the serializeAttributes() bytes as
// kUNKNOWN (TensorRT's documented way to store arbitrary bytes), read back by createPlugin(kRUNTIME).
constexpr const char* kSerializedField = "litevit_attributes";

inline AttributeMap attributesFromSerializedField(const nvinfer1::PluginFieldCollection* fields)
{
    if (fields != nullptr && fields->fields != nullptr)
    {
        for (int32_t i = 0; i < fields->nbFields; ++i)
        {
            const nvinfer1::PluginField& field = fields->fields[i];
            if (field.name != nullptr && std::strcmp(field.name, kSerializedField) == 0 && field.length >= 0)
            {
                return deserializeAttributes(static_cast<const char*>(field.data), static_cast<size_t>(field.length));
            }
        }
    }
    throw std::invalid_argument(std::string("the engine holds no '") + kSerializedField + "' field for this plugin.");
}

template <typename Op, const KernelPair& (*Kernels)()>
class PluginV3 final : public nvinfer1::IPluginV3,
                       public nvinfer1::IPluginV3OneCore,
                       public nvinfer1::IPluginV3OneBuild,
                       public nvinfer1::IPluginV3OneRuntime
{
public:
    PluginV3(OpInstance<Op, Kernels> instance, std::string layer)
        : instance_(std::move(instance))
        , layer_(std::move(layer))
    {
    }

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override
    {
        switch (type)
        {
        case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        default: return nullptr;
        }
    }

    nvinfer1::IPluginV3* clone() noexcept override
    {
        try
        {
            return new PluginV3(instance_, layer_, refusal_);
        }
        catch (const std::exception& error)
        {
            report(error.what());
            return nullptr;
        }
    }

    // IPluginV3OneCore
    const char* getPluginName() const noexcept override
    {
        return Op::kName;
    }

    const char* getPluginVersion() const noexcept override
    {
        return kPluginVersion;
    }

    const char* getPluginNamespace() const noexcept override
    {
        return kPluginNamespace;
    }

    // IPluginV3OneBuild
    int32_t configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
        const nvinfer1::DynamicPluginTensorDesc*, int32_t) noexcept override
    {
        try
        {
            checkProfileShapes(instance_.op(), in, in != nullptr ? nbInputs : 0);
            return 0;
        }
        catch (const std::exception& error)
        {
            refuse(error.what());
            return 1;
        }
    }

    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        const nvinfer1::DataType* inputTypes, int32_t nbInputs) const noexcept override
    {
        if (nbOutputs != 1 || nbInputs < 1)
        {
            report("expects one output and at least one input.");
            return 1;
        }
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs, const nvinfer1::DimsExprs*, int32_t,
        nvinfer1::DimsExprs* outputs, int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept override
    {
        try
        {
            if (nbOutputs != 1 || outputs == nullptr)
            {
                throw std::invalid_argument("has one output, not " + std::to_string(nbOutputs) + ".");
            }
            instance_.checkKnownInputs(inputs, nbInputs);
            outputs[0] = instance_.outputDims(inputs, nbInputs, exprBuilder);
            return 0;
        }
        catch (const std::exception& error)
        {
            refuse(error.what());
            return 1;
        }
    }

    bool supportsFormatCombination(
        int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override
    {
        return !refusal_.refused() && inOut != nullptr && pos >= 0 && pos < nbInputs + nbOutputs
            && supportedIo(pos, inOut[pos].desc, inOut[0].desc);
    }

    int32_t getNbOutputs() const noexcept override
    {
        return 1;
    }

    // The kernels need no scratch memory.
    size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc*, int32_t, const nvinfer1::DynamicPluginTensorDesc*,
        int32_t) const noexcept override
    {
        return 0;
    }

    // IPluginV3OneRuntime: the run-time shapes, all known, before the first enqueue with them.
    int32_t onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs, const nvinfer1::PluginTensorDesc*,
        int32_t) noexcept override
    {
        try
        {
            std::vector<Shape> shapes;
            for (int32_t i = 0; in != nullptr && i < nbInputs; ++i)
            {
                shapes.push_back(shapeOf(in[i].dims));
            }
            static_cast<void>(instance_.op().launch(shapes));
            return 0;
        }
        catch (const std::exception& error)
        {
            report(error.what());
            return 1;
        }
    }

    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
        const void* const* inputs, void* const* outputs, void*, cudaStream_t stream) noexcept override
    {
        return instance_.enqueue(inputDesc, inputs, outputs, stream, [this](const char* what) { report(what); });
    }

    // A copy that also reports run-time errors to the execution context's error recorder.
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override
    {
        auto* attached = static_cast<PluginV3*>(clone());
        if (attached != nullptr)
        {
            attached->recorder_ = context != nullptr ? context->getErrorRecorder() : nullptr;
        }
        return attached;
    }

    const nvinfer1::PluginFieldCollection* getFieldsToSerialize() noexcept override
    {
        const std::vector<char>& bytes = instance_.serialized();
        serializedField_ = nvinfer1::PluginField(
            kSerializedField, bytes.data(), nvinfer1::PluginFieldType::kUNKNOWN, static_cast<int32_t>(bytes.size()));
        serializedFields_.nbFields = 1;
        serializedFields_.fields = &serializedField_;
        return &serializedFields_;
    }

private:
    PluginV3(OpInstance<Op, Kernels> instance, std::string layer, Refusal refusal)
        : instance_(std::move(instance))
        , layer_(std::move(layer))
        , refusal_(refusal)
    {
    }

    // A build-time refusal: logged once for this plugin and its clones.
    void refuse(const char* what) noexcept
    {
        refusal_.refuse(Op::kName, layer_, what);
    }

    // A run-time error: the logger always; the execution context's error recorder too once
    // attached to one.
    void report(const char* what) const noexcept
    {
        const std::string message = describe(Op::kName, layer_, what);
        logError(message);
        if (recorder_ != nullptr)
        {
            static_cast<void>(recorder_->reportError(nvinfer1::ErrorCode::kINVALID_ARGUMENT, message.c_str()));
        }
    }

    OpInstance<Op, Kernels> instance_;
    std::string layer_;
    Refusal refusal_;
    nvinfer1::IErrorRecorder* recorder_ = nullptr;
    nvinfer1::PluginField serializedField_;
    nvinfer1::PluginFieldCollection serializedFields_{};
};

template <typename Op, const KernelPair& (*Kernels)()>
class CreatorV3 final : public nvinfer1::IPluginCreatorV3One
{
public:
    CreatorV3()
        : fields_(Op::attributeNames())
    {
    }

    const char* getPluginName() const noexcept override
    {
        return Op::kName;
    }

    const char* getPluginVersion() const noexcept override
    {
        return kPluginVersion;
    }

    const char* getPluginNamespace() const noexcept override
    {
        return kPluginNamespace;
    }

    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override
    {
        return fields_.collection();
    }

    // Build phase: the node's attributes as kINT32 fields. Runtime phase (engine deserialization):
    // the fields getFieldsToSerialize() returned.
    nvinfer1::IPluginV3* createPlugin(
        const char* name, const nvinfer1::PluginFieldCollection* fc, nvinfer1::TensorRTPhase phase) noexcept override
    {
        const std::string layer = name != nullptr ? name : "";
        try
        {
            const AttributeMap attributes = phase == nvinfer1::TensorRTPhase::kRUNTIME
                ? attributesFromSerializedField(fc)
                : attributesFromFields(fc, Op::attributeNames());
            return new PluginV3<Op, Kernels>(OpInstance<Op, Kernels>(Op::fromAttributes(attributes)), layer);
        }
        catch (const std::exception& error)
        {
            logError(describe(Op::kName, layer, error.what()));
            return nullptr;
        }
    }

private:
    FieldNames fields_;
};

} // namespace litevit::trt
