// The creators of liblitevit_plugins.so and the entry points TensorRT loads them through.
//
//   TensorRT >= 10: IPluginCreatorV3One creators (IPluginV3), or with -DLITEVIT_PLUGIN_API=v2 the
//                   deprecated IPluginCreator ones; exported through getCreators().
//   TensorRT 8.6:   IPluginCreator (IPluginV2DynamicExt), exported through getPluginCreators().
//   TensorRT 8.5:   the same creators, registered by a static initialiser when the library is loaded
//                   (ctypes.CDLL, trtexec --plugins=): 8.5 has no IPluginRegistry::loadLibrary.
//
// Only one of the two ways registers a creator in a given build: IPluginRegistry::loadLibrary
// registers what getCreators/getPluginCreators return, and a creator that a static initialiser had
// registered already would make that fail. A creator is keyed by (name, version, namespace), so V2
// and V3 creators of one op cannot both be registered either.
//
// NEVER COMPILED HERE (no TensorRT headers on the development machines or in CI): first compiled on
// the target by plugins/CMakeLists.txt.

#include "csa/csa_core.h"
#include "ghost_head/ghost_head_core.h"
#include "rasa/rasa_core.h"

#include "trt_glue.h"

#if NV_TENSORRT_MAJOR >= 10 && !defined(LITEVIT_PLUGIN_V2)
#include "trt_plugin_v3.h"
#define LITEVIT_PLUGIN_V3 1
#else
#include "trt_plugin_v2.h"
#define LITEVIT_PLUGIN_V3 0
#endif

#define LITEVIT_EXPORT extern "C" __attribute__((visibility("default")))

#if NV_TENSORRT_MAJOR >= 10
// getPluginCreators and the V2 creators are deprecated in 10.x; they are chosen on purpose here.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

namespace
{

#if LITEVIT_PLUGIN_V3
template <typename Op, const litevit::KernelPair& (*Kernels)()>
using Creator = litevit::trt::CreatorV3<Op, Kernels>;
using CreatorBase = nvinfer1::IPluginCreatorV3One;
#else
template <typename Op, const litevit::KernelPair& (*Kernels)()>
using Creator = litevit::trt::CreatorV2<Op, Kernels>;
using CreatorBase = nvinfer1::IPluginCreator;
#endif

// The op class and kernel pair of each plugin name the ONNX nodes use (CSA, RASA, GhostHead).
CreatorBase* const* creators()
{
    static Creator<litevit::CsaOp, &litevit::csaKernels> csa;
    static Creator<litevit::RasaOp, &litevit::rasaKernels> rasa;
    static Creator<litevit::GhostHeadOp, &litevit::ghostHeadKernels> ghostHead;
    static CreatorBase* const list[] = {&csa, &rasa, &ghostHead};
    return list;
}

constexpr int32_t kNumCreators = 3;

#if !LITEVIT_TRT_AT_LEAST(8, 6)
// Not REGISTER_TENSORRT_PLUGIN: that registers under the namespace "" and the parser looks the nodes
// up under plugin_namespace "litevit".
struct StaticRegistration
{
    StaticRegistration()
    {
        nvinfer1::IPluginRegistry* registry = getPluginRegistry();
        for (int32_t i = 0; i < kNumCreators && registry != nullptr; ++i)
        {
            if (!registry->registerCreator(*creators()[i], litevit::trt::kPluginNamespace))
            {
                litevit::trt::logError(std::string("litevit plugins: could not register ")
                    + creators()[i]->getPluginName() + " (is another library registering it?).");
            }
        }
    }
};
const StaticRegistration staticRegistration;
#endif

} // namespace

#if LITEVIT_TRT_AT_LEAST(8, 6)
LITEVIT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    litevit::trt::loggerFinder().store(finder);
}
#endif

#if NV_TENSORRT_MAJOR >= 10
LITEVIT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static nvinfer1::IPluginCreatorInterface* const list[]
        = {creators()[0], creators()[1], creators()[2]};
    nbCreators = kNumCreators;
    return list;
}
#endif

#if !LITEVIT_PLUGIN_V3
LITEVIT_EXPORT nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    nbCreators = kNumCreators;
    return creators();
}
#endif
