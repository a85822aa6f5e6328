// IPluginV2DynamicExt + IPluginCreator over an op core: the plugin interface of TensorRT 8.5/8.6
// (JetPack 5, JetPack 6.0), and on 10.x/11.x the one built with -DLITEVIT_PLUGIN_API=v2.
//
// Shapes the kernels cannot take are refused while the engine is built, in one logged line naming
// the node: getOutputDimensions checks the dims the network fixes, configurePlugin the profile's
// (fixed dims, minimum and maximum shapes). IPluginV2 has no error return there, so a refused
// plugin then accepts no format (supportsFormatCombination) and fails initialize(), which stops the
// build; enqueue checks the run-time shapes once more.
#pragma once

#include "trt_glue.h"

namespace litevit::trt
{

#if NV_TENSORRT_MAJOR >= 10
// TensorRT 10.0 deprecates IPluginV2DynamicExt and IPluginCreator (IPluginV3 supersedes them). This
// class is their implementation, chosen with -DLITEVIT_PLUGIN_API=v2 on 10.x/11.x (one plugin
// library whose engines behave as on 8.6): the deprecated interfaces are the point of it.
LITEVIT_DEPRECATED_USE_BEGIN
#endif
template <typename Op, const KernelPair& (*Kernels)()>
class PluginV2 final : public nvinfer1::IPluginV2DynamicExt
{
public:
    PluginV2(OpInstance<Op, Kernels> instance, std::string layer, std::string pluginNamespace)
        : instance_(std::move(instance))
        , layer_(std::move(layer))
        , namespace_(std::move(pluginNamespace))
    {
    }

    // IPluginV2
    const char* getPluginType() const noexcept override
    {
        return Op::kName;
    }

    const char* getPluginVersion() const noexcept override
    {
        return kPluginVersion;
    }

    int32_t getNbOutputs() const noexcept override
    {
        return 1;
    }

    // Called when the engine is built and when it is deserialized: a refused plugin stops the build.
    int32_t initialize() noexcept override
    {
        return refusal_.refused() ? 1 : 0;
    }

    void terminate() noexcept override {}

    size_t getSerializationSize() const noexcept override
    {
        return instance_.serialized().size();
    }

    void serialize(void* buffer) const noexcept override
    {
        std::memcpy(buffer, instance_.serialized().data(), instance_.serialized().size());
    }

    void destroy() noexcept override
    {
        delete this;
    }

    void setPluginNamespace(const char* pluginNamespace) noexcept override
    {
        try
        {
            namespace_ = pluginNamespace != nullptr ? pluginNamespace : "";
        }
        catch (const std::exception& error)
        {
            logError(describe(Op::kName, layer_, error.what()));
        }
    }

    const char* getPluginNamespace() const noexcept override
    {
        return namespace_.c_str();
    }

    // IPluginV2Ext
    nvinfer1::DataType getOutputDataType(
        int32_t, const nvinfer1::DataType* inputTypes, int32_t nbInputs) const noexcept override
    {
        return nbInputs > 0 ? inputTypes[0] : nvinfer1::DataType::kFLOAT;
    }

    // IPluginV2DynamicExt
    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override
    {
        try
        {
            return new PluginV2(*this);
        }
        catch (const std::exception& error)
        {
            logError(describe(Op::kName, layer_, error.what()));
            return nullptr;
        }
    }

    nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, const nvinfer1::DimsExprs* inputs,
        int32_t nbInputs, nvinfer1::IExprBuilder& exprBuilder) noexcept override
    {
        try
        {
            instance_.checkKnownInputs(inputs, nbInputs);
        }
        catch (const std::exception& error)
        {
            refusal_.refuse(Op::kName, layer_, error.what());
        }
        try
        {
            if (outputIndex != 0)
            {
                throw std::invalid_argument("has one output, not " + std::to_string(outputIndex + 1) + ".");
            }
            return instance_.outputDims(inputs, nbInputs, exprBuilder);
        }
        catch (const std::exception& error)
        {
            refusal_.refuse(Op::kName, layer_, error.what());
            return nvinfer1::DimsExprs{};
        }
    }

    bool supportsFormatCombination(
        int32_t pos, const nvinfer1::PluginTensorDesc* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override
    {
        return !refusal_.refused() && inOut != nullptr && pos >= 0 && pos < nbInputs + nbOutputs
            && supportedIo(pos, inOut[pos], inOut[0]);
    }

    void configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
        const nvinfer1::DynamicPluginTensorDesc*, int32_t) noexcept override
    {
        try
        {
            checkProfileShapes(instance_.op(), in, in != nullptr ? nbInputs : 0);
        }
        catch (const std::exception& error)
        {
            refusal_.refuse(Op::kName, layer_, error.what());
        }
    }

    // The kernels need no scratch memory.
    size_t getWorkspaceSize(const nvinfer1::PluginTensorDesc*, int32_t, const nvinfer1::PluginTensorDesc*,
        int32_t) const noexcept override
    {
        return 0;
    }

    int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
        const void* const* inputs, void* const* outputs, void*, cudaStream_t stream) noexcept override
    {
        return instance_.enqueue(inputDesc, inputs, outputs, stream,
            [this](const char* what) { logError(describe(Op::kName, layer_, what)); });
    }

private:
    PluginV2(const PluginV2&) = default;

    OpInstance<Op, Kernels> instance_;
    std::string layer_;
    std::string namespace_;
    Refusal refusal_;
};

template <typename Op, const KernelPair& (*Kernels)()>
class CreatorV2 final : public nvinfer1::IPluginCreator
{
public:
    CreatorV2()
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

    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override
    {
        return fields_.collection();
    }

    // TensorRT 8.5 deprecates IPluginV2 (in favour of IPluginV2DynamicExt), yet IPluginCreator's
    // createPlugin and deserializePlugin return IPluginV2* in every release that has them: the
    // overrides must name it.
    LITEVIT_DEPRECATED_USE_BEGIN
    nvinfer1::IPluginV2* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc) noexcept override
    {
        const std::string layer = name != nullptr ? name : "";
        try
        {
            Op op = Op::fromAttributes(attributesFromFields(fc, Op::attributeNames()));
            return new PluginV2<Op, Kernels>(OpInstance<Op, Kernels>(std::move(op)), layer, namespace_);
        }
        catch (const std::exception& error)
        {
            logError(describe(Op::kName, layer, error.what()));
            return nullptr;
        }
    }

    nvinfer1::IPluginV2* deserializePlugin(const char* name, const void* serialData, size_t serialLength) noexcept override
    {
        const std::string layer = name != nullptr ? name : "";
        try
        {
            Op op = Op::fromAttributes(deserializeAttributes(static_cast<const char*>(serialData), serialLength));
            return new PluginV2<Op, Kernels>(OpInstance<Op, Kernels>(std::move(op)), layer, namespace_);
        }
        catch (const std::exception& error)
        {
            logError(describe(Op::kName, layer, error.what()));
            return nullptr;
        }
    }
    LITEVIT_DEPRECATED_USE_END

    void setPluginNamespace(const char* pluginNamespace) noexcept override
    {
        try
        {
            namespace_ = pluginNamespace != nullptr ? pluginNamespace : "";
        }
        catch (const std::exception& error)
        {
            logError(describe(Op::kName, "", error.what()));
        }
    }

    const char* getPluginNamespace() const noexcept override
    {
        return namespace_.c_str();
    }

private:
    FieldNames fields_;
    std::string namespace_ = kPluginNamespace;
};
#if NV_TENSORRT_MAJOR >= 10
LITEVIT_DEPRECATED_USE_END
#endif

} // namespace litevit::trt
