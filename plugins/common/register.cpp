// The creators of liblitevit_plugins.so and how TensorRT finds them, however the library is loaded.
//
//   TensorRT >= 10: IPluginCreatorV3One creators (IPluginV3), or with -DLITEVIT_PLUGIN_API=v2 the
//                   deprecated IPluginCreator ones; TensorRT 8.5/8.6: IPluginCreator
//                   (IPluginV2DynamicExt). Each is registered as (CSA | RASA | GhostHead, "1",
//                   "litevit"), the (op_type, plugin_version, plugin_namespace) of the exported nodes.
//
// Every release: a static initialiser registers the three creators in TensorRT's global registry
// (getPluginRegistry()) when the library is loaded, and the matching static destructor deregisters
// them when it is unloaded. A plain dlopen is all these loaders do (NVIDIA's and Triton's sources):
//   trtexec --plugins (8.5) and --staticPlugins (8.6 on; --plugins is its deprecated name): dlopen
//     with RTLD_LAZY (samples/common/common.h, loadLibrary / DynamicLibrary), nothing else;
//   Triton's TensorRT backend, --backend-config=tensorrt,plugins=LIB: dlopen with RTLD_NOW |
//     RTLD_LOCAL (tensorrt_backend src/shared_library.cc), nothing else; LD_PRELOAD likewise;
//   ctypes.CDLL(LIB) before parsing (what litevit does on 8.5).
//
// IPluginRegistry::loadLibrary (8.6 on: Python's load_library, which litevit uses from 8.6, and
// trtexec --dynamicPlugins) dlopens the library as well, so the initialiser has registered the
// creators when it then calls setLoggerFinder and the entry point below and registers what that
// returns. It "will fail and return nullptr if any of the plugins are already registered"
// (NvInferRuntimeCommon.h), so the entry point returns only the creators the initialiser could not
// register, normally none: the two registrations never collide, and a creator that another library
// registered under the same name still makes loadLibrary fail, as it should.
//
// Which entry point a release reads; the library exports that one:
//   8.5:   none (8.5 has no loadLibrary);
//   8.6:   getPluginCreators (IPluginCreator*; IPluginCreatorInterface does not exist yet);
//   >= 10: getCreators (IPluginCreatorInterface*, V2 and V3 creators alike): 10.0 deprecates the
//          IPluginCreator registry calls for their IPluginCreatorInterface twins, NVIDIA's own
//          libnvinfer_vc_plugin exports only getCreators from 10.1 on (plugin/vc/vfcCommon.cpp), and
//          10.3's loadLibrary refuses a library that has only getPluginCreators ("SymbolAddress for
//          getCreators could not be loaded", NVIDIA/TensorRT issue 4121). 10.0.x, whose own library
//          exported both, is not a supported release.
//
// Compiled against the real headers of 8.5.3, 8.6.1, 10.3.0, 10.4.0 and 11.1 and driven through
// this ABI by tests/plugins/trt_harness (dlopen + dlsym as the loaders above); never loaded by a real
// TensorRT.

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

namespace
{

#if LITEVIT_PLUGIN_V3
template <typename Op, const litevit::KernelPair& (*Kernels)()>
using Creator = litevit::trt::CreatorV3<Op, Kernels>;
#else
template <typename Op, const litevit::KernelPair& (*Kernels)()>
using Creator = litevit::trt::CreatorV2<Op, Kernels>;
#endif

// What the registry of this release registers: IPluginCreatorInterface from 10.0 (V2 creators
// included; the IPluginCreator overloads are deprecated there), IPluginCreator before.
#if NV_TENSORRT_MAJOR >= 10
using RegistryCreator = nvinfer1::IPluginCreatorInterface;
#else
using RegistryCreator = nvinfer1::IPluginCreator;
#endif

constexpr int32_t kNumCreators = 3;

// The three creators, and which of them the static initialiser registered.
struct Creators
{
    Creator<litevit::CsaOp, &litevit::csaKernels> csa;
    Creator<litevit::RasaOp, &litevit::rasaKernels> rasa;
    Creator<litevit::GhostHeadOp, &litevit::ghostHeadKernels> ghostHead;
    RegistryCreator* const all[kNumCreators] = {&csa, &rasa, &ghostHead};
    const char* const names[kNumCreators] = {litevit::CsaOp::kName, litevit::RasaOp::kName, litevit::GhostHeadOp::kName};
    bool registered[kNumCreators] = {false, false, false};
};

Creators& creators()
{
    static Creators instance;
    return instance;
}

// Registers the creators when the library is loaded and deregisters them when it is unloaded. Not
// REGISTER_TENSORRT_PLUGIN: that registers under the namespace "" and the parser looks the nodes up
// under plugin_namespace "litevit".
class StaticRegistration
{
public:
    StaticRegistration()
        : registry_(getPluginRegistry())
    {
        Creators& all = creators();
        for (int32_t i = 0; i < kNumCreators; ++i)
        {
            all.registered[i]
                = registry_ != nullptr && registry_->registerCreator(*all.all[i], litevit::trt::kPluginNamespace);
            if (!all.registered[i])
            {
                litevit::trt::logError(std::string("litevit plugins: could not register ")
                    + litevit::trt::kPluginNamespace + "::" + all.names[i] + " version "
                    + litevit::trt::kPluginVersion + " when the library was loaded (did another library register "
                    + "it already?).");
            }
        }
    }

    ~StaticRegistration()
    {
        Creators& all = creators();
        for (int32_t i = 0; i < kNumCreators; ++i)
        {
            if (all.registered[i])
            {
                registry_->deregisterCreator(*all.all[i]);
                all.registered[i] = false;
            }
        }
    }

    StaticRegistration(const StaticRegistration&) = delete;
    StaticRegistration& operator=(const StaticRegistration&) = delete;

private:
    nvinfer1::IPluginRegistry* registry_;
};

const StaticRegistration staticRegistration;

#if LITEVIT_TRT_AT_LEAST(8, 6)
// The creators the static initialiser did not register, for IPluginRegistry::loadLibrary to
// register (normally none), as the Pointer type of the entry point.
template <typename Pointer>
Pointer const* unregisteredCreators(int32_t& nbCreators)
{
    static Pointer list[kNumCreators] = {};
    Creators& all = creators();
    int32_t count = 0;
    for (int32_t i = 0; i < kNumCreators; ++i)
    {
        if (!all.registered[i])
        {
            list[count++] = all.all[i];
        }
    }
    nbCreators = count;
    return list;
}
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
    return unregisteredCreators<nvinfer1::IPluginCreatorInterface*>(nbCreators);
}
#elif LITEVIT_TRT_AT_LEAST(8, 6)
LITEVIT_EXPORT nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    return unregisteredCreators<nvinfer1::IPluginCreator*>(nbCreators);
}
#endif
