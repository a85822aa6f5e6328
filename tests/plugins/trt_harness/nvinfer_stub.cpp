// A stand-in for libnvinfer.so that only satisfies the link of liblitevit_plugins.so (which must
// resolve every symbol at link time, -Wl,--no-undefined) on machines without TensorRT: CI builds
// the library against each set of TensorRT headers with it. Test scaffolding, never shipped.
//
// These are the only two symbols of libnvinfer the library uses (nm -u). They return nullptr: the
// library then registers nothing and logs to stderr. The harness (trt_harness) defines both itself,
// and its definitions are the ones the library binds to at run time.
extern "C" __attribute__((visibility("default"))) void* getPluginRegistry() noexcept
{
    return nullptr;
}

extern "C" __attribute__((visibility("default"))) void* getLogger() noexcept
{
    return nullptr;
}
