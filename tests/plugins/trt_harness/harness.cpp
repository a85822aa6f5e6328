// Drives liblitevit_plugins.so through TensorRT's plugin ABI as TensorRT and its ONNX parser do, for
// the release whose headers it is compiled against, on the nodes of plugin_nodes.json (exported
// graphs). Run by tests/plugins/harness_build.py under AddressSanitizer (leaks included).
//
//   trt_harness LIBRARY FIXTURE.json      one "ok ..." / "FAIL ..." line per check; exit 1 on a failure
//
// 1. Loading. dlopen alone, as trtexec --plugins/--staticPlugins, Triton's TensorRT backend and
//    ctypes.CDLL do: the three creators must be registered (CSA, RASA, GhostHead, "1", "litevit").
//    The library exports exactly the entry points of its release (8.5: none; 8.6: setLoggerFinder,
//    getPluginCreators; 10+: setLoggerFinder, getCreators). Then IPluginRegistry::loadLibrary
//    (8.6+) on the same library must succeed with nothing left to register. At the end, unloading
//    must leave the registry empty, and a library whose CSA name is taken by another must make
//    loadLibrary fail.
// 2. Per node, the parser's steps (onnx-tensorrt FallbackPluginImporter, 8.5-GA .. 10.1-GA; the
//    stored copy stops at 10.1-GA, which stands for 10.3/10.4/11.1): the creator by (op_type,
//    plugin_version, plugin_namespace) of the node (8.x getPluginCreator; 10+ getCreator and the
//    creator's kind); getFieldNames; the PluginFieldCollection built from the node's attributes as
//    loadFields builds it (INT -> one kINT32, INTS -> kINT32 array, FLOAT -> kFLOAT32, STRING ->
//    kCHAR with its NUL); createPlugin with the node's name. Then the network's and the builder's:
//    output count, types and dims (symbolic batch and spatial sizes through an IExprBuilder,
//    evaluated against the exported graph's shapes), clone, supportsFormatCombination over every
//    type x format (exactly FP32 and FP16 linear, all of one type, must be accepted), configure
//    with the profile's shapes, workspace, serialization and the runtime's deserialization (round
//    trip equal, state deep-copied: the source destroyed before the copy is used).
// 3. Refusals: a missing or wrongly typed attribute gives a null plugin and one logged error line
//    naming the node and the attribute; shapes the kernels cannot take are refused while the
//    engine is built (network or profile stage), in one line naming the node and the dims.
//
// enqueue needs a GPU and is not called here.
#include "json.h"
#include "trt_host.h"

#include <NvInferVersion.h>

#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>
#include <type_traits>

namespace
{

using harness::Json;

harness::RecordingLogger& hostLogger()
{
    static harness::RecordingLogger logger;
    return logger;
}

harness::Registry& hostRegistry()
{
    static harness::Registry registry(hostLogger());
    return registry;
}

} // namespace

// libnvinfer's global registry and logger: the library resolves these two symbols here (the harness
// is linked with -rdynamic, ahead of the stub libnvinfer the library was linked against).
extern "C" nvinfer1::IPluginRegistry* getPluginRegistry() noexcept
{
    return &hostRegistry();
}

extern "C" nvinfer1::ILogger* getLogger() noexcept
{
    return &hostLogger();
}

namespace
{

constexpr const char* kNamespace = "litevit";
constexpr const char* kVersion = "1";
const std::vector<std::string> kOps{"CSA", "RASA", "GhostHead"};

class Checks
{
public:
    bool check(bool ok, const std::string& what, const std::string& detail = "")
    {
        if (ok)
        {
            ++passed_;
            std::cout << "ok " << what << '\n';
        }
        else
        {
            ++failed_;
            std::cout << "FAIL " << what << (detail.empty() ? "" : ": " + detail) << '\n';
        }
        return ok;
    }

    int failed() const
    {
        return failed_;
    }

    int passed() const
    {
        return passed_;
    }

private:
    int passed_ = 0;
    int failed_ = 0;
};

Checks checks;

std::string join(const std::vector<std::string>& parts, const char* separator = " | ")
{
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i)
    {
        out += (i ? separator : "") + parts[i];
    }
    return out;
}

// Errors logged since `mark` (hostLogger().lines.size() taken before a step).
std::vector<std::string> errorsSince(size_t mark)
{
    return hostLogger().errors(mark);
}

// --- The fixture ----------------------------------------------------------------------------------

struct Attribute
{
    std::string name;
    std::string type; // ONNX AttributeProto type name: INT, INTS, FLOAT, FLOATS, STRING
    Json value;
};

struct Node
{
    std::string model;
    std::string name;
    std::string opType;
    std::vector<Attribute> attributes;
    std::vector<std::vector<Json>> inputs;
    std::vector<std::vector<Json>> outputs;

    const Attribute* attribute(const std::string& attributeName) const
    {
        for (const Attribute& a : attributes)
        {
            if (a.name == attributeName)
            {
                return &a;
            }
        }
        return nullptr;
    }

    // The parser's attrs.get<std::string>(name, fallback).
    std::string text(const std::string& attributeName, const std::string& fallback) const
    {
        const Attribute* a = attribute(attributeName);
        return a != nullptr && a->type == "STRING" ? a->value.string() : fallback;
    }
};

std::vector<std::vector<Json>> shapesOf(const Json& list)
{
    std::vector<std::vector<Json>> shapes;
    for (const Json& shape : list.array())
    {
        shapes.push_back(shape.array());
    }
    return shapes;
}

Node nodeOf(const Json& json)
{
    Node node;
    node.model = json["model"].string();
    node.name = json["name"].string();
    node.opType = json["op_type"].string();
    for (const Json& a : json["attributes"].array())
    {
        node.attributes.push_back({a["name"].string(), a["type"].string(), a["value"]});
    }
    node.inputs = shapesOf(json["inputs"]);
    node.outputs = shapesOf(json["outputs"]);
    return node;
}

// The symbols (dims known only at run time) of some shapes, sorted.
std::vector<std::string> symbolsOf(const std::vector<std::vector<Json>>& shapes)
{
    std::set<std::string> found;
    for (const auto& shape : shapes)
    {
        for (const Json& dim : shape)
        {
            if (dim.kind != Json::Kind::kString)
            {
                continue;
            }
            const std::string& text = dim.string();
            for (size_t at = 0; at < text.size();)
            {
                if (std::isalpha(static_cast<unsigned char>(text[at])) || text[at] == '_')
                {
                    const size_t start = at;
                    while (at < text.size() && (std::isalnum(static_cast<unsigned char>(text[at])) || text[at] == '_'))
                    {
                        ++at;
                    }
                    found.insert(text.substr(start, at - start));
                }
                else
                {
                    ++at;
                }
            }
        }
    }
    return {found.begin(), found.end()};
}

using Bindings = std::map<std::string, int64_t>;

// The profile the harness builds with: every symbol 1 at the minimum, distinct larger values at
// the optimum and maximum (so that two different symbols never look equal).
struct Profile
{
    Bindings min;
    Bindings opt;
    Bindings max;
};

Profile profileOf(const std::vector<std::string>& symbols)
{
    Profile profile;
    for (size_t i = 0; i < symbols.size(); ++i)
    {
        profile.min[symbols[i]] = 1;
        profile.opt[symbols[i]] = 2 + static_cast<int64_t>(i);
        profile.max[symbols[i]] = 5 + 2 * static_cast<int64_t>(i);
    }
    return profile;
}

const harness::Expr* exprOf(harness::ExprBuilder& builder, const Json& dim)
{
    return dim.kind == Json::Kind::kString ? builder.parse(dim.string()) : builder.number(dim.integerValue());
}

nvinfer1::DimsExprs dimsExprsOf(harness::ExprBuilder& builder, const std::vector<Json>& shape)
{
    nvinfer1::DimsExprs dims{};
    dims.nbDims = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
    {
        dims.d[i] = exprOf(builder, shape[i]);
    }
    return dims;
}

// The dims at build time (-1 where only the run time knows), or at one binding of the symbols.
nvinfer1::Dims dimsOf(harness::ExprBuilder& builder, const std::vector<Json>& shape, const Bindings* at)
{
    nvinfer1::Dims dims{};
    dims.nbDims = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
    {
        const harness::Expr* expr = exprOf(builder, shape[i]);
        dims.d[i] = static_cast<std::remove_reference_t<decltype(dims.d[0])>>(
            at != nullptr ? expr->evaluate(*at) : (expr->constant() ? expr->value() : -1));
    }
    return dims;
}

#if NV_TENSORRT_MAJOR >= 10
std::string dimsText(const nvinfer1::Dims& dims)
{
    std::string out = "(";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        out += (i ? ", " : "") + std::to_string(dims.d[i]);
    }
    return out + ")";
}
#endif

// --- The parser: onnx-tensorrt's loadFields ---------------------------------------------------

// The PluginFieldCollection the parser hands createPlugin, and the storage it points into.
struct Fields
{
    std::vector<std::string> names;
    std::vector<std::vector<uint8_t>> data;
    std::vector<nvinfer1::PluginField> fields;
    nvinfer1::PluginFieldCollection collection{};
};

template <typename T>
void append(std::vector<uint8_t>& out, T value)
{
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

// Fields for each of the creator's field names that the node has as an attribute, in the order of
// getFieldNames(), converted by the attribute's ONNX type as loadFields converts them; a missing
// attribute is skipped with the parser's warning.
std::unique_ptr<Fields> loadFields(const nvinfer1::PluginFieldCollection* fieldNames, const std::vector<Attribute>& attrs)
{
    auto out = std::make_unique<Fields>();
    const int32_t count = fieldNames != nullptr ? fieldNames->nbFields : 0;
    out->names.reserve(static_cast<size_t>(count));
    out->data.reserve(static_cast<size_t>(count));
    for (int32_t i = 0; i < count; ++i)
    {
        const std::string name = fieldNames->fields[i].name;
        const auto attr = std::find_if(attrs.begin(), attrs.end(), [&](const Attribute& a) { return a.name == name; });
        if (attr == attrs.end())
        {
            hostLogger().log(nvinfer1::ILogger::Severity::kWARNING,
                ("Attribute " + name + " not found in plugin node! Ensure that the plugin creator has a default value "
                                       "defined or the engine may fail to build.")
                    .c_str());
            continue;
        }
        out->names.push_back(name);
        out->data.emplace_back();
        std::vector<uint8_t>& bytes = out->data.back();
        nvinfer1::PluginFieldType type{};
        int32_t length = 0;
        if (attr->type == "INT")
        {
            append(bytes, static_cast<int32_t>(attr->value.integerValue()));
            type = nvinfer1::PluginFieldType::kINT32;
            length = 1;
        }
        else if (attr->type == "INTS")
        {
            for (const Json& v : attr->value.array())
            {
                append(bytes, static_cast<int32_t>(v.integerValue()));
            }
            type = nvinfer1::PluginFieldType::kINT32;
            length = static_cast<int32_t>(attr->value.array().size());
        }
        else if (attr->type == "FLOAT")
        {
            append(bytes, static_cast<float>(attr->value.kind == Json::Kind::kInt ? attr->value.integer : attr->value.real));
            type = nvinfer1::PluginFieldType::kFLOAT32;
            length = 1;
        }
        else if (attr->type == "FLOATS")
        {
            for (const Json& v : attr->value.array())
            {
                append(bytes, static_cast<float>(v.kind == Json::Kind::kInt ? v.integer : v.real));
            }
            type = nvinfer1::PluginFieldType::kFLOAT32;
            length = static_cast<int32_t>(attr->value.array().size());
        }
        else if (attr->type == "STRING")
        {
            bytes.assign(attr->value.string().begin(), attr->value.string().end());
            bytes.push_back(0);
            type = nvinfer1::PluginFieldType::kCHAR;
            length = static_cast<int32_t>(bytes.size());
        }
        else
        {
            throw std::runtime_error("the fixture has an attribute type the harness does not convert: " + attr->type);
        }
        out->fields.emplace_back(out->names.back().c_str(), bytes.data(), type, length);
    }
    out->collection.nbFields = static_cast<int32_t>(out->fields.size());
    out->collection.fields = out->fields.data();
    return out;
}

#if NV_TENSORRT_MAJOR >= 10
// What each field type's elements take, for copying fields an engine would store.
size_t elementSize(nvinfer1::PluginFieldType type)
{
    switch (type)
    {
    case nvinfer1::PluginFieldType::kFLOAT16: return 2;
    case nvinfer1::PluginFieldType::kFLOAT32: return 4;
    case nvinfer1::PluginFieldType::kFLOAT64: return 8;
    case nvinfer1::PluginFieldType::kINT8: return 1;
    case nvinfer1::PluginFieldType::kINT16: return 2;
    case nvinfer1::PluginFieldType::kINT32: return 4;
    case nvinfer1::PluginFieldType::kCHAR: return 1;
    case nvinfer1::PluginFieldType::kDIMS: return sizeof(nvinfer1::Dims);
    case nvinfer1::PluginFieldType::kUNKNOWN: return 1;
    default: return 0;
    }
}
#endif

// The creator the parser (and the runtime) finds for (name, version, namespace).
harness::RegistryCreator* lookup(const std::string& name, const std::string& version, const std::string& ns)
{
#if NV_TENSORRT_MAJOR >= 10
    return hostRegistry().getCreator(name.c_str(), version.c_str(), ns.c_str());
#else
    return hostRegistry().getPluginCreator(name.c_str(), version.c_str(), ns.c_str());
#endif
}

std::string creatorKind(harness::RegistryCreator* creator)
{
#if NV_TENSORRT_MAJOR >= 10
    return creator->getInterfaceInfo().kind;
#else
    static_cast<void>(creator);
    return "PLUGIN CREATOR_V1";
#endif
}

// The I/O descriptions TensorRT queries formats with: positions before `pos` hold the choice made,
// `pos` the candidate, the later ones something no kernel takes (a plugin must not look there).
std::vector<nvinfer1::PluginTensorDesc> formatQuery(const std::vector<nvinfer1::Dims>& dims, int32_t pos,
    nvinfer1::DataType chosenType, nvinfer1::DataType type, nvinfer1::TensorFormat format)
{
    std::vector<nvinfer1::PluginTensorDesc> descs(dims.size());
    for (size_t i = 0; i < dims.size(); ++i)
    {
        descs[i].dims = dims[i];
        descs[i].scale = 1.0F;
        if (static_cast<int32_t>(i) < pos)
        {
            descs[i].type = chosenType;
            descs[i].format = nvinfer1::TensorFormat::kLINEAR;
        }
        else if (static_cast<int32_t>(i) == pos)
        {
            descs[i].type = type;
            descs[i].format = format;
        }
        else
        {
            descs[i].type = nvinfer1::DataType::kINT8;
            descs[i].format = nvinfer1::TensorFormat::kCHW32;
        }
    }
    return descs;
}

// Every type x format at every position, as TensorRT's format search asks; `accepts` answers one
// query. Exactly (FP32 | FP16, linear) must be accepted at position 0, and at the later positions
// exactly the type chosen at 0, linear.
void checkFormats(const std::string& label, const std::vector<nvinfer1::Dims>& ioDims,
    const std::function<bool(int32_t, const std::vector<nvinfer1::PluginTensorDesc>&)>& accepts)
{
    const int32_t positions = static_cast<int32_t>(ioDims.size());
    std::vector<std::string> wrong;
    for (const nvinfer1::DataType chosen : {nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kHALF})
    {
        for (int32_t pos = 0; pos < positions; ++pos)
        {
            for (int32_t t = 0; t < nvinfer1::EnumMax<nvinfer1::DataType>(); ++t)
            {
                for (int32_t f = 0; f < nvinfer1::EnumMax<nvinfer1::TensorFormat>(); ++f)
                {
                    const auto type = static_cast<nvinfer1::DataType>(t);
                    const auto format = static_cast<nvinfer1::TensorFormat>(f);
                    const bool linear = format == nvinfer1::TensorFormat::kLINEAR;
                    const bool expected = pos == 0
                        ? linear && (type == nvinfer1::DataType::kFLOAT || type == nvinfer1::DataType::kHALF)
                        : linear && type == chosen;
                    if (accepts(pos, formatQuery(ioDims, pos, chosen, type, format)) != expected)
                    {
                        wrong.push_back("pos " + std::to_string(pos) + " type " + std::to_string(t) + " format "
                            + std::to_string(f) + (expected ? " refused" : " accepted"));
                    }
                }
            }
        }
    }
    checks.check(wrong.empty(), label + ": supportsFormatCombination accepts exactly FP32/FP16 linear, one type",
        join(std::vector<std::string>(wrong.begin(), wrong.begin() + std::min<size_t>(wrong.size(), 6))));
}

// The plugin's output dims against the exported graph's, at the profile's three bindings.
void checkOutputDims(const std::string& label, harness::ExprBuilder& builder, const nvinfer1::DimsExprs& got,
    const std::vector<Json>& expected, const Profile& profile)
{
    std::string problem;
    if (got.nbDims != static_cast<int32_t>(expected.size()))
    {
        problem = "rank " + std::to_string(got.nbDims) + ", the graph's " + std::to_string(expected.size());
    }
    for (int32_t axis = 0; problem.empty() && axis < got.nbDims; ++axis)
    {
        const harness::Expr* dim = builder.own(got.d[axis]);
        if (dim == nullptr)
        {
            problem = "dim " + std::to_string(axis) + " is not an expression of the builder";
            break;
        }
        const harness::Expr* want = exprOf(builder, expected[static_cast<size_t>(axis)]);
        for (const Bindings* at : {&profile.min, &profile.opt, &profile.max})
        {
            if (dim->evaluate(*at) != want->evaluate(*at))
            {
                problem = "dim " + std::to_string(axis) + " is " + dim->text() + ", the graph's "
                    + want->text() + " (" + std::to_string(dim->evaluate(*at)) + " != "
                    + std::to_string(want->evaluate(*at)) + ")";
                break;
            }
        }
    }
    checks.check(problem.empty() && builder.foreignOperands == 0,
        label + ": output dims equal the exported graph's at min/opt/max", problem);
}

// The logged errors since `mark` are one line naming the node and containing `needle`.
void checkOneError(const std::string& label, size_t mark, const std::string& nodeName, const std::string& needle)
{
    const std::vector<std::string> errors = errorsSince(mark);
    const bool one = errors.size() == 1 && errors[0].find("'" + nodeName + "'") != std::string::npos
        && errors[0].find(needle) != std::string::npos && errors[0].find('\n') == std::string::npos;
    checks.check(one, label, std::to_string(errors.size()) + " error line(s): " + join(errors));
}

void checkNoError(const std::string& label, size_t mark)
{
    const std::vector<std::string> errors = errorsSince(mark);
    checks.check(errors.empty(), label + ": nothing logged as an error", join(errors));
}

// The I/O dims for format queries: inputs at build time (-1 for run-time dims), then the output.
std::vector<nvinfer1::Dims> ioDimsOf(harness::ExprBuilder& builder, const Node& node)
{
    std::vector<nvinfer1::Dims> dims;
    for (const auto& shape : node.inputs)
    {
        dims.push_back(dimsOf(builder, shape, nullptr));
    }
    dims.push_back(dimsOf(builder, node.outputs[0], nullptr));
    return dims;
}

std::vector<nvinfer1::DynamicPluginTensorDesc> profileDescs(harness::ExprBuilder& builder,
    const std::vector<std::vector<Json>>& shapes, const Profile& profile, nvinfer1::DataType type)
{
    std::vector<nvinfer1::DynamicPluginTensorDesc> descs(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i)
    {
        descs[i].desc.dims = dimsOf(builder, shapes[i], nullptr);
        descs[i].desc.type = type;
        descs[i].desc.format = nvinfer1::TensorFormat::kLINEAR;
        descs[i].desc.scale = 1.0F;
        descs[i].min = dimsOf(builder, shapes[i], &profile.min);
        descs[i].max = dimsOf(builder, shapes[i], &profile.max);
#if NV_TENSORRT_MAJOR >= 10
        descs[i].opt = dimsOf(builder, shapes[i], &profile.opt);
#endif
    }
    return descs;
}

#if NV_TENSORRT_MAJOR >= 10
std::vector<nvinfer1::PluginTensorDesc> runtimeDescs(harness::ExprBuilder& builder,
    const std::vector<std::vector<Json>>& shapes, const Bindings& at, nvinfer1::DataType type)
{
    std::vector<nvinfer1::PluginTensorDesc> descs(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i)
    {
        descs[i].dims = dimsOf(builder, shapes[i], &at);
        descs[i].type = type;
        descs[i].format = nvinfer1::TensorFormat::kLINEAR;
        descs[i].scale = 1.0F;
    }
    return descs;
}
#endif

// Attribute variants of a node: without one attribute the creator reads, or with it retyped.
std::vector<Attribute> without(const Node& node, const std::string& name)
{
    std::vector<Attribute> attrs;
    for (const Attribute& a : node.attributes)
    {
        if (a.name != name)
        {
            attrs.push_back(a);
        }
    }
    return attrs;
}

std::vector<Attribute> retyped(const Node& node, const std::string& name)
{
    std::vector<Attribute> attrs = node.attributes;
    for (Attribute& a : attrs)
    {
        if (a.name == name)
        {
            a.type = a.type == "INTS" ? "FLOATS" : "FLOAT";
        }
    }
    return attrs;
}

std::vector<std::string> fieldNamesOf(const nvinfer1::PluginFieldCollection* names)
{
    std::vector<std::string> out;
    for (int32_t i = 0; names != nullptr && i < names->nbFields; ++i)
    {
        out.push_back(names->fields[i].name != nullptr ? names->fields[i].name : "");
    }
    return out;
}

// Every field the creator asks for is an INT/INTS attribute of the exported node.
void checkFieldNames(const std::string& label, const Node& node, const std::vector<std::string>& names)
{
    std::vector<std::string> missing;
    for (const std::string& name : names)
    {
        const Attribute* a = node.attribute(name);
        if (a == nullptr || (a->type != "INT" && a->type != "INTS"))
        {
            missing.push_back(name);
        }
    }
    checks.check(!names.empty() && missing.empty(),
        label + ": getFieldNames (" + join(names, ", ") + ") are INT/INTS attributes of the exported node",
        "not on the node as INT/INTS: " + join(missing, ", "));
}

// --- IPluginV2DynamicExt (8.x; 10.x/11.x built with -DLITEVIT_PLUGIN_API=v2) ----------------------

using PluginV2 = nvinfer1::IPluginV2DynamicExt;

PluginV2* asDynamicExt(nvinfer1::IPluginV2* plugin)
{
    // What TensorRT reads to tell a plugin's interface: the top byte of getTensorRTVersion().
    if (plugin == nullptr
        || (plugin->getTensorRTVersion() >> 24) != static_cast<int32_t>(nvinfer1::PluginVersion::kV2_DYNAMICEXT))
    {
        return nullptr;
    }
    return static_cast<PluginV2*>(plugin);
}

nvinfer1::IPluginCreator* asV2Creator(harness::RegistryCreator* creator)
{
#if NV_TENSORRT_MAJOR >= 10
    return static_cast<nvinfer1::IPluginCreator*>(creator);
#else
    return creator;
#endif
}

std::vector<char> serializedV2(const PluginV2& plugin)
{
    std::vector<char> bytes(plugin.getSerializationSize());
    plugin.serialize(bytes.data());
    return bytes;
}

PluginV2* createV2(nvinfer1::IPluginCreator& creator, const std::string& name, const std::vector<Attribute>& attrs)
{
    std::unique_ptr<Fields> fields = loadFields(creator.getFieldNames(), attrs);
    nvinfer1::IPluginV2* plugin = creator.createPlugin(name.c_str(), &fields->collection);
    fields.reset(); // the parser's storage goes away: the plugin must hold its own copy
    if (plugin != nullptr && asDynamicExt(plugin) == nullptr)
    {
        plugin->destroy();
        throw std::runtime_error("createPlugin made a plugin that is not an IPluginV2DynamicExt");
    }
    return asDynamicExt(plugin);
}

void runNodeV2(const Node& node, nvinfer1::IPluginCreator& creator)
{
    const std::string label = node.model + "/" + node.name + " (" + node.opType + ", V2)";
    harness::ExprBuilder builder;
    const Profile profile = profileOf(symbolsOf(node.inputs));
    checks.check(creator.getPluginName() == node.opType && creator.getPluginVersion() == std::string(kVersion)
            && creator.getPluginNamespace() == std::string(kNamespace),
        label + ": the creator is " + kNamespace + "::" + node.opType + " version " + kVersion);
    checkFieldNames(label, node, fieldNamesOf(creator.getFieldNames()));

    size_t mark = hostLogger().lines.size();
    PluginV2* plugin = createV2(creator, node.name, node.attributes);
    if (!checks.check(plugin != nullptr, label + ": createPlugin from the node's fields", join(errorsSince(mark))))
    {
        return;
    }
    checks.check(plugin->getPluginType() == node.opType && plugin->getPluginVersion() == std::string(kVersion)
            && plugin->getPluginNamespace() == std::string(kNamespace),
        label + ": the plugin's type, version and namespace (what the engine records)");

    // The network: outputs, their types and dims.
    const int32_t nbInputs = static_cast<int32_t>(node.inputs.size());
    checks.check(plugin->getNbOutputs() == 1, label + ": one output");
    for (const nvinfer1::DataType type : {nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kHALF})
    {
        const std::vector<nvinfer1::DataType> types(node.inputs.size(), type);
        checks.check(plugin->getOutputDataType(0, types.data(), nbInputs) == type,
            label + ": output type follows the inputs' (" + std::to_string(static_cast<int>(type)) + ")");
    }
    std::vector<nvinfer1::DimsExprs> inputs;
    for (const auto& shape : node.inputs)
    {
        inputs.push_back(dimsExprsOf(builder, shape));
    }
    const nvinfer1::DimsExprs out = plugin->getOutputDimensions(0, inputs.data(), nbInputs, builder);
    checkOutputDims(label, builder, out, node.outputs[0], profile);

    // The builder works on clones.
    PluginV2* built = plugin->clone();
    plugin->destroy();
    if (!checks.check(built != nullptr, label + ": clone"))
    {
        return;
    }
    const std::vector<nvinfer1::Dims> ioDims = ioDimsOf(builder, node);
    checkFormats(label, ioDims, [&](int32_t pos, const std::vector<nvinfer1::PluginTensorDesc>& descs) {
        return built->supportsFormatCombination(pos, descs.data(), nbInputs, 1);
    });
    for (const nvinfer1::DataType type : {nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kHALF})
    {
        const auto in = profileDescs(builder, node.inputs, profile, type);
        const auto outDesc = profileDescs(builder, node.outputs, profile, type);
        built->configurePlugin(in.data(), nbInputs, outDesc.data(), 1);
        std::vector<nvinfer1::PluginTensorDesc> plainIn;
        for (const auto& d : in)
        {
            plainIn.push_back(d.desc);
        }
        checks.check(built->getWorkspaceSize(plainIn.data(), nbInputs, &outDesc[0].desc, 1) == 0,
            label + ": no workspace (" + std::to_string(static_cast<int>(type)) + ")");
    }
    checks.check(built->initialize() == 0, label + ": initialize");
    const std::vector<char> bytes = serializedV2(*built);
    checks.check(!bytes.empty(), label + ": serialize (" + std::to_string(bytes.size()) + " bytes)");

    // Deep copy: a clone outlives its source.
    PluginV2* copy = built->clone();
    built->terminate();
    built->destroy();
    checks.check(copy != nullptr && serializedV2(*copy) == bytes, label + ": a clone serializes alike after its source is destroyed");

    // The runtime: the creator by the type/version/namespace the engine recorded, then
    // deserializePlugin from the engine's bytes (freed before the plugin is used).
    harness::RegistryCreator* runtimeCreator
        = lookup(copy->getPluginType(), copy->getPluginVersion(), copy->getPluginNamespace());
    checks.check(runtimeCreator == static_cast<harness::RegistryCreator*>(&creator),
        label + ": the runtime finds the creator from what the engine recorded");
    auto engineBytes = std::make_unique<std::vector<char>>(bytes);
    mark = hostLogger().lines.size();
    nvinfer1::IPluginV2* restored = creator.deserializePlugin(node.name.c_str(), engineBytes->data(), engineBytes->size());
    engineBytes.reset();
    PluginV2* runtime = asDynamicExt(restored);
    if (checks.check(runtime != nullptr, label + ": deserializePlugin", join(errorsSince(mark))))
    {
        checks.check(serializedV2(*runtime) == bytes, label + ": serialize -> deserialize -> serialize is the same bytes");
        checks.check(runtime->initialize() == 0, label + ": the deserialized plugin initializes");
        runtime->terminate();
        runtime->destroy();
    }
    copy->destroy();
    checkNoError(label, mark);

    // A truncated engine is refused in one line, not read past its end.
    mark = hostLogger().lines.size();
    const std::vector<char> truncated(bytes.begin(), bytes.end() - 1);
    nvinfer1::IPluginV2* broken = creator.deserializePlugin(node.name.c_str(), truncated.data(), truncated.size());
    checks.check(broken == nullptr, label + ": a truncated engine gives no plugin");
    checkOneError(label + ": ... and one error line", mark, node.name, "truncated");
}

// --- IPluginV3 (10.x/11.x) -----------------------------------------------------------------------

#if NV_TENSORRT_MAJOR >= 10
struct V3Parts
{
    nvinfer1::IPluginV3OneCore* core;
    nvinfer1::IPluginV3OneBuild* build;
    nvinfer1::IPluginV3OneRuntime* runtime;
};

V3Parts partsOf(nvinfer1::IPluginV3& plugin)
{
    return {static_cast<nvinfer1::IPluginV3OneCore*>(plugin.getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE)),
        static_cast<nvinfer1::IPluginV3OneBuild*>(plugin.getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD)),
        static_cast<nvinfer1::IPluginV3OneRuntime*>(
            plugin.getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME))};
}

// The fields an engine stores for a plugin (getFieldsToSerialize), copied as the plan holds them.
struct StoredFields
{
    std::vector<std::string> names;
    std::vector<std::vector<uint8_t>> data;
    std::vector<nvinfer1::PluginFieldType> types;
    std::vector<int32_t> lengths;

    bool operator==(const StoredFields& other) const
    {
        return names == other.names && data == other.data && types == other.types && lengths == other.lengths;
    }

    std::unique_ptr<Fields> collection() const
    {
        auto out = std::make_unique<Fields>();
        out->names = names;
        out->data = data;
        for (size_t i = 0; i < names.size(); ++i)
        {
            out->fields.emplace_back(out->names[i].c_str(), out->data[i].data(), types[i], lengths[i]);
        }
        out->collection.nbFields = static_cast<int32_t>(out->fields.size());
        out->collection.fields = out->fields.data();
        return out;
    }
};

StoredFields store(nvinfer1::IPluginV3OneRuntime& runtime)
{
    StoredFields stored;
    const nvinfer1::PluginFieldCollection* fields = runtime.getFieldsToSerialize();
    for (int32_t i = 0; fields != nullptr && i < fields->nbFields; ++i)
    {
        const nvinfer1::PluginField& f = fields->fields[i];
        const size_t size = elementSize(f.type) * static_cast<size_t>(std::max(f.length, 0));
        const auto* bytes = static_cast<const uint8_t*>(f.data);
        stored.names.emplace_back(f.name != nullptr ? f.name : "");
        stored.data.emplace_back(bytes, bytes + size);
        stored.types.push_back(f.type);
        stored.lengths.push_back(f.length);
    }
    return stored;
}

nvinfer1::IPluginCreatorV3One* asV3Creator(harness::RegistryCreator* creator)
{
    return static_cast<nvinfer1::IPluginCreatorV3One*>(creator);
}

nvinfer1::IPluginV3* createV3(nvinfer1::IPluginCreatorV3One& creator, const std::string& name, const std::vector<Attribute>& attrs)
{
    std::unique_ptr<Fields> fields = loadFields(creator.getFieldNames(), attrs);
    nvinfer1::IPluginV3* plugin = creator.createPlugin(name.c_str(), &fields->collection, nvinfer1::TensorRTPhase::kBUILD);
    fields.reset();
    return plugin;
}

void runNodeV3(const Node& node, nvinfer1::IPluginCreatorV3One& creator)
{
    const std::string label = node.model + "/" + node.name + " (" + node.opType + ", V3)";
    harness::ExprBuilder builder;
    const Profile profile = profileOf(symbolsOf(node.inputs));
    checks.check(creator.getPluginName() == node.opType && creator.getPluginVersion() == std::string(kVersion)
            && creator.getPluginNamespace() == std::string(kNamespace),
        label + ": the creator is " + kNamespace + "::" + node.opType + " version " + kVersion);
    checkFieldNames(label, node, fieldNamesOf(creator.getFieldNames()));

    size_t mark = hostLogger().lines.size();
    nvinfer1::IPluginV3* plugin = createV3(creator, node.name, node.attributes);
    if (!checks.check(plugin != nullptr, label + ": createPlugin(kBUILD) from the node's fields", join(errorsSince(mark))))
    {
        return;
    }
    V3Parts parts = partsOf(*plugin);
    checks.check(parts.core != nullptr && parts.build != nullptr && parts.runtime != nullptr
            && std::string(parts.core->getInterfaceInfo().kind) == "PLUGIN_V3ONE_CORE"
            && std::string(parts.build->getInterfaceInfo().kind).rfind("PLUGIN_V3ONE_BUILD", 0) == 0
            && std::string(parts.runtime->getInterfaceInfo().kind) == "PLUGIN_V3ONE_RUNTIME",
        label + ": core, build and runtime capabilities");
    if (parts.core == nullptr || parts.build == nullptr || parts.runtime == nullptr)
    {
        delete plugin;
        return;
    }
    checks.check(parts.core->getPluginName() == node.opType && parts.core->getPluginVersion() == std::string(kVersion)
            && parts.core->getPluginNamespace() == std::string(kNamespace),
        label + ": the plugin's name, version and namespace (what the engine records)");

    const int32_t nbInputs = static_cast<int32_t>(node.inputs.size());
    checks.check(parts.build->getNbOutputs() == 1, label + ": one output");
    for (const nvinfer1::DataType type : {nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kHALF})
    {
        const std::vector<nvinfer1::DataType> types(node.inputs.size(), type);
        nvinfer1::DataType outType = nvinfer1::DataType::kINT8;
        checks.check(parts.build->getOutputDataTypes(&outType, 1, types.data(), nbInputs) == 0 && outType == type,
            label + ": output type follows the inputs' (" + std::to_string(static_cast<int>(type)) + ")");
    }
    std::vector<nvinfer1::DimsExprs> inputs;
    for (const auto& shape : node.inputs)
    {
        inputs.push_back(dimsExprsOf(builder, shape));
    }
    nvinfer1::DimsExprs out{};
    checks.check(parts.build->getOutputShapes(inputs.data(), nbInputs, nullptr, 0, &out, 1, builder) == 0,
        label + ": getOutputShapes returns 0");
    checkOutputDims(label, builder, out, node.outputs[0], profile);

    nvinfer1::IPluginV3* built = plugin->clone();
    delete plugin;
    if (!checks.check(built != nullptr, label + ": clone"))
    {
        return;
    }
    parts = partsOf(*built);
    const std::vector<nvinfer1::Dims> ioDims = ioDimsOf(builder, node);
    checkFormats(label, ioDims, [&](int32_t pos, const std::vector<nvinfer1::PluginTensorDesc>& descs) {
        std::vector<nvinfer1::DynamicPluginTensorDesc> dynamic(descs.size());
        for (size_t i = 0; i < descs.size(); ++i)
        {
            dynamic[i].desc = descs[i];
            dynamic[i].min = descs[i].dims;
            dynamic[i].max = descs[i].dims;
            dynamic[i].opt = descs[i].dims;
        }
        return parts.build->supportsFormatCombination(pos, dynamic.data(), nbInputs, 1);
    });
    for (const nvinfer1::DataType type : {nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kHALF})
    {
        const auto in = profileDescs(builder, node.inputs, profile, type);
        const auto outDesc = profileDescs(builder, node.outputs, profile, type);
        checks.check(parts.build->configurePlugin(in.data(), nbInputs, outDesc.data(), 1) == 0,
            label + ": configurePlugin with the profile (" + std::to_string(static_cast<int>(type)) + ")");
        checks.check(parts.build->getWorkspaceSize(in.data(), nbInputs, outDesc.data(), 1) == 0,
            label + ": no workspace (" + std::to_string(static_cast<int>(type)) + ")");
    }
    const StoredFields stored = store(*parts.runtime);
    checks.check(!stored.names.empty(), label + ": getFieldsToSerialize (" + std::to_string(stored.names.size()) + " fields)");

    nvinfer1::IPluginV3* copy = built->clone();
    delete built;
    checks.check(copy != nullptr && store(*partsOf(*copy).runtime) == stored,
        label + ": a clone stores the same fields after its source is destroyed");

    // The runtime: creator by name/version/namespace, createPlugin(kRUNTIME) from the stored fields
    // (freed before the plugin is used), attachToContext, onShapeChange at a run-time shape.
    harness::RegistryCreator* runtimeCreator = lookup(partsOf(*copy).core->getPluginName(),
        partsOf(*copy).core->getPluginVersion(), partsOf(*copy).core->getPluginNamespace());
    checks.check(runtimeCreator == static_cast<harness::RegistryCreator*>(&creator),
        label + ": the runtime finds the creator from what the engine recorded");
    mark = hostLogger().lines.size();
    std::unique_ptr<Fields> engineFields = stored.collection();
    nvinfer1::IPluginV3* restored = creator.createPlugin(node.name.c_str(), &engineFields->collection, nvinfer1::TensorRTPhase::kRUNTIME);
    engineFields.reset();
    if (checks.check(restored != nullptr, label + ": createPlugin(kRUNTIME) from the stored fields", join(errorsSince(mark))))
    {
        harness::RecordingErrorRecorder recorder;
        harness::ResourceContext context(recorder);
        nvinfer1::IPluginV3* attached = partsOf(*restored).runtime->attachToContext(&context);
        delete restored;
        if (checks.check(attached != nullptr, label + ": attachToContext"))
        {
            V3Parts running = partsOf(*attached);
            checks.check(store(*running.runtime) == stored, label + ": stored fields -> plugin -> the same fields");
            for (const Bindings* at : {&profile.min, &profile.opt, &profile.max})
            {
                const auto in = runtimeDescs(builder, node.inputs, *at, nvinfer1::DataType::kHALF);
                const auto outDesc = runtimeDescs(builder, node.outputs, *at, nvinfer1::DataType::kHALF);
                checks.check(running.runtime->onShapeChange(in.data(), nbInputs, outDesc.data(), 1) == 0,
                    label + ": onShapeChange at " + dimsText(in[0].dims));
            }
            checks.check(recorder.errors.empty(), label + ": nothing reported to the error recorder");
            delete attached;
        }
    }
    delete copy;
    checkNoError(label, mark);
}
#endif

// --- Refusals ------------------------------------------------------------------------------------

void runAttributeRefusals(const Node& node, harness::RegistryCreator* creator)
{
    const std::string label = node.model + "/" + node.name + " (" + node.opType + ")";
#if NV_TENSORRT_MAJOR >= 10
    const bool v2 = creatorKind(creator) == "PLUGIN CREATOR_V1";
    const nvinfer1::PluginFieldCollection* names
        = v2 ? asV2Creator(creator)->getFieldNames() : asV3Creator(creator)->getFieldNames();
#else
    const bool v2 = true;
    const nvinfer1::PluginFieldCollection* names = creator->getFieldNames();
#endif
    auto attempt = [&](const std::vector<Attribute>& attrs) -> bool {
        if (v2)
        {
            PluginV2* plugin = createV2(*asV2Creator(creator), node.name, attrs);
            if (plugin != nullptr)
            {
                plugin->destroy();
            }
            return plugin != nullptr;
        }
#if NV_TENSORRT_MAJOR >= 10
        nvinfer1::IPluginV3* plugin = createV3(*asV3Creator(creator), node.name, attrs);
        delete plugin;
        return plugin != nullptr;
#else
        return true;
#endif
    };
    for (const std::string& name : fieldNamesOf(names))
    {
        size_t mark = hostLogger().lines.size();
        checks.check(!attempt(without(node, name)), label + ": no plugin without attribute " + name);
        checkOneError(label + ": ... one error line naming the node and " + name, mark, node.name, name);
        mark = hostLogger().lines.size();
        checks.check(!attempt(retyped(node, name)), label + ": no plugin with attribute " + name + " as FLOAT(S)");
        checkOneError(label + ": ... one error line naming the node, " + name + " and kFLOAT32", mark, node.name,
            "'" + name + "' must be an ONNX int or ints (kINT32 plugin data); got kFLOAT32");
    }
}

// One shape the kernels cannot take: refused at the stage given, in one line naming the node.
void runShapeRefusal(const Node& base, const Json& refusal, harness::RegistryCreator* creator)
{
    Node node = base;
    node.inputs = shapesOf(refusal["inputs"]);
    const std::string stage = refusal["stage"].string();
    const std::string expect = refusal["expect"].string();
    const std::string label = node.name + " refusal (" + refusal["why"].string() + ")";
    harness::ExprBuilder builder;
    const Profile profile = profileOf(symbolsOf(node.inputs));
    const int32_t nbInputs = static_cast<int32_t>(node.inputs.size());
    std::vector<nvinfer1::DimsExprs> inputs;
    for (const auto& shape : node.inputs)
    {
        inputs.push_back(dimsExprsOf(builder, shape));
    }
    const auto in = profileDescs(builder, node.inputs, profile, nvinfer1::DataType::kFLOAT);
    const auto outDesc = profileDescs(builder, node.outputs, profile, nvinfer1::DataType::kFLOAT);
    size_t mark = hostLogger().lines.size();
#if NV_TENSORRT_MAJOR >= 10
    if (creatorKind(creator) != "PLUGIN CREATOR_V1")
    {
        nvinfer1::IPluginV3* plugin = createV3(*asV3Creator(creator), node.name, node.attributes);
        if (!checks.check(plugin != nullptr, label + ": createPlugin"))
        {
            return;
        }
        V3Parts parts = partsOf(*plugin);
        nvinfer1::DimsExprs out{};
        const int32_t shapes = parts.build->getOutputShapes(inputs.data(), nbInputs, nullptr, 0, &out, 1, builder);
        const int32_t configured = parts.build->configurePlugin(in.data(), nbInputs, outDesc.data(), 1);
        checks.check(stage == "network" ? shapes != 0 : shapes == 0 && configured != 0,
            label + ": refused by " + (stage == "network" ? "getOutputShapes" : "configurePlugin"),
            "getOutputShapes " + std::to_string(shapes) + ", configurePlugin " + std::to_string(configured));
        checkOneError(label + ": one error line naming the node and the dims", mark, node.name, expect);
        // At run time onShapeChange refuses the same shapes.
        const auto runtimeIn = runtimeDescs(builder, node.inputs, profile.max, nvinfer1::DataType::kFLOAT);
        const auto runtimeOut = runtimeDescs(builder, node.outputs, profile.max, nvinfer1::DataType::kFLOAT);
        checks.check(parts.runtime->onShapeChange(runtimeIn.data(), nbInputs, runtimeOut.data(), 1) != 0,
            label + ": onShapeChange refuses them at run time");
        delete plugin;
        return;
    }
#endif
    PluginV2* plugin = createV2(*asV2Creator(creator), node.name, node.attributes);
    if (!checks.check(plugin != nullptr, label + ": createPlugin"))
    {
        return;
    }
    plugin->getOutputDimensions(0, inputs.data(), nbInputs, builder);
    const std::vector<std::string> afterNetwork = errorsSince(mark);
    PluginV2* built = plugin->clone();
    plugin->destroy();
    built->configurePlugin(in.data(), nbInputs, outDesc.data(), 1);
    checks.check(stage == "network" ? afterNetwork.size() == 1 : afterNetwork.empty(),
        label + ": refused at the " + stage + " stage",
        std::to_string(afterNetwork.size()) + " error line(s) after getOutputDimensions");
    checkOneError(label + ": one error line naming the node and the dims", mark, node.name, expect);
    bool anyFormat = false;
    const std::vector<nvinfer1::Dims> ioDims = ioDimsOf(builder, node);
    for (int32_t pos = 0; pos <= nbInputs; ++pos)
    {
        for (const nvinfer1::DataType type : {nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kHALF})
        {
            const auto descs = formatQuery(ioDims, pos, type, type, nvinfer1::TensorFormat::kLINEAR);
            anyFormat = anyFormat || built->supportsFormatCombination(pos, descs.data(), nbInputs, 1);
        }
    }
    checks.check(!anyFormat, label + ": the refused plugin accepts no format");
    checks.check(built->initialize() != 0, label + ": and does not initialize");
    built->destroy();
}

// --- Loading ---------------------------------------------------------------------------------------

// The registrations are exactly the three creators under "litevit", version 1, each registered
// under the namespace its creator reports.
void checkThreeRegistered(const std::string& label)
{
    std::vector<std::string> found;
    bool namespacesAgree = true;
    for (const harness::Registration& entry : hostRegistry().registrations())
    {
        found.push_back(entry.pluginNamespace + "::" + entry.name + " v" + entry.version);
        std::string name;
        std::string version;
        std::string ns;
        harness::creatorIdentity(*entry.creator, name, version, ns);
        namespacesAgree = namespacesAgree && ns == entry.pluginNamespace;
    }
    std::vector<std::string> expected;
    for (const std::string& op : kOps)
    {
        expected.push_back(std::string(kNamespace) + "::" + op + " v" + kVersion);
    }
    std::sort(found.begin(), found.end());
    std::sort(expected.begin(), expected.end());
    checks.check(found == expected && namespacesAgree, label, join(found, ", "));
}

void checkExports(void* handle)
{
    const bool hasFinder = dlsym(handle, "setLoggerFinder") != nullptr;
    const bool hasPluginCreators = dlsym(handle, "getPluginCreators") != nullptr;
    const bool hasCreators = dlsym(handle, "getCreators") != nullptr;
#if NV_TENSORRT_MAJOR >= 10
    const bool expected = hasFinder && hasCreators && !hasPluginCreators;
    const char* what = "exports setLoggerFinder and getCreators (not getPluginCreators), what 10+ reads";
#elif HARNESS_TRT_AT_LEAST(8, 6)
    const bool expected = hasFinder && hasPluginCreators && !hasCreators;
    const char* what = "exports setLoggerFinder and getPluginCreators (not getCreators), what 8.6 reads";
#else
    const bool expected = !hasFinder && !hasPluginCreators && !hasCreators;
    const char* what = "exports no loadLibrary entry point (8.5 has no loadLibrary)";
#endif
    checks.check(expected, what,
        std::string("setLoggerFinder ") + (hasFinder ? "yes" : "no") + ", getPluginCreators "
            + (hasPluginCreators ? "yes" : "no") + ", getCreators " + (hasCreators ? "yes" : "no"));
}

#if HARNESS_TRT_AT_LEAST(8, 6)
// A creator another library registered first under litevit::CSA version 1.
#if NV_TENSORRT_MAJOR >= 10
class ForeignCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    nvinfer1::IPluginV3* createPlugin(const char*, const nvinfer1::PluginFieldCollection*, nvinfer1::TensorRTPhase) noexcept override
    {
        return nullptr;
    }
    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override
    {
        return &fields_;
    }
    const char* getPluginName() const noexcept override
    {
        return "CSA";
    }
    const char* getPluginVersion() const noexcept override
    {
        return kVersion;
    }
    const char* getPluginNamespace() const noexcept override
    {
        return kNamespace;
    }

private:
    nvinfer1::PluginFieldCollection fields_{};
};
#else
class ForeignCreator final : public nvinfer1::IPluginCreator
{
public:
    const char* getPluginName() const noexcept override
    {
        return "CSA";
    }
    const char* getPluginVersion() const noexcept override
    {
        return kVersion;
    }
    const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override
    {
        return &fields_;
    }
    nvinfer1::IPluginV2* createPlugin(const char*, const nvinfer1::PluginFieldCollection*) noexcept override
    {
        return nullptr;
    }
    nvinfer1::IPluginV2* deserializePlugin(const char*, const void*, size_t) noexcept override
    {
        return nullptr;
    }
    void setPluginNamespace(const char*) noexcept override {}
    const char* getPluginNamespace() const noexcept override
    {
        return kNamespace;
    }

private:
    nvinfer1::PluginFieldCollection fields_{};
};
#endif
#endif

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        throw std::runtime_error("cannot read " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

int run(const std::string& library, const std::string& fixturePath)
{
    const Json fixture = Json::parse(readFile(fixturePath));
    std::vector<Node> nodes;
    for (const Json& json : fixture["nodes"].array())
    {
        nodes.push_back(nodeOf(json));
    }
    std::cout << "TensorRT headers " << NV_TENSORRT_MAJOR << "." << NV_TENSORRT_MINOR << "." << NV_TENSORRT_PATCH
              << ", " << nodes.size() << " exported nodes from " << fixturePath << '\n';

    // 1. dlopen alone (trtexec --plugins/--staticPlugins, Triton, ctypes.CDLL).
    checks.check(hostRegistry().registrations().empty(), "the registry starts empty");
    size_t mark = hostLogger().lines.size();
    void* handle = dlopen(library.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (!checks.check(handle != nullptr, "dlopen " + library, handle == nullptr ? dlerror() : ""))
    {
        return 1;
    }
    checkThreeRegistered("dlopen alone registers litevit::CSA, RASA, GhostHead v1");
    checkNoError("dlopen", mark);
#if NV_TENSORRT_MAJOR >= 10
    checks.check(hostRegistry().interfaceRegisterCalls == 3 && hostRegistry().v2RegisterCalls == 0,
        "registered through registerCreator(IPluginCreatorInterface&), not the overload 10.0 deprecates");
#endif
    checkExports(handle);

#if HARNESS_TRT_AT_LEAST(8, 6)
    // IPluginRegistry::loadLibrary on the same library (trtexec --dynamicPlugins, load_library).
    mark = hostLogger().lines.size();
    void* loaded = hostRegistry().loadLibrary(library.c_str());
    checks.check(loaded != nullptr, "loadLibrary succeeds after dlopen (no registration collides)", join(errorsSince(mark)));
    checks.check(hostRegistry().lastEntryPointCount() == 0, "the entry point leaves nothing to register twice",
        std::to_string(hostRegistry().lastEntryPointCount()) + " creators returned");
    checkThreeRegistered("after loadLibrary: still exactly the three creators");
#endif

    // 2. The parser and builder on every exported node; 3. refusals.
    std::map<std::string, const Node*> byName;
    for (const Node& node : nodes)
    {
        byName[node.name] = &node;
        harness::RegistryCreator* creator
            = lookup(node.opType, node.text("plugin_version", "1"), node.text("plugin_namespace", ""));
        if (!checks.check(creator != nullptr, node.name + ": the registry has " + node.text("plugin_namespace", "") + "::"
                    + node.opType + " version " + node.text("plugin_version", "1")))
        {
            continue;
        }
        const std::string kind = creatorKind(creator);
#if NV_TENSORRT_MAJOR >= 10
        if (kind != "PLUGIN CREATOR_V1")
        {
            checks.check(kind == "PLUGIN CREATOR_V3ONE", node.name + ": creator kind " + kind);
            runNodeV3(node, *asV3Creator(creator));
            runAttributeRefusals(node, creator);
            continue;
        }
#endif
        runNodeV2(node, *asV2Creator(creator));
        runAttributeRefusals(node, creator);
    }
    for (const Json& refusal : fixture["refusals"].array())
    {
        const auto found = byName.find(refusal["node"].string());
        if (checks.check(found != byName.end(), "refusal case for node " + refusal["node"].string()))
        {
            const Node& node = *found->second;
            runShapeRefusal(node, refusal,
                lookup(node.opType, node.text("plugin_version", "1"), node.text("plugin_namespace", "")));
        }
    }
    checks.check(hostRegistry().unexpectedCalls == 0, "no registry call the plugins have no business making");

    // Unloading deregisters what loading registered.
#if HARNESS_TRT_AT_LEAST(8, 6)
    if (loaded != nullptr)
    {
        hostRegistry().deregisterLibrary(loaded);
    }
#endif
    dlclose(handle);
    checks.check(hostRegistry().registrations().empty(), "unloading the library leaves the registry empty",
        std::to_string(hostRegistry().registrations().size()) + " left");

#if HARNESS_TRT_AT_LEAST(8, 6)
    // Another library registered litevit::CSA first: loading logs it, and loadLibrary fails
    // instead of registering a second CSA.
    ForeignCreator foreign;
    hostRegistry().registerCreator(foreign, kNamespace);
    mark = hostLogger().lines.size();
    void* again = dlopen(library.c_str(), RTLD_LAZY | RTLD_LOCAL);
    std::vector<std::string> loadErrors; // the library's own lines (the registry logs its refusal too)
    for (const std::string& line : errorsSince(mark))
    {
        if (line.rfind("litevit", 0) == 0)
        {
            loadErrors.push_back(line);
        }
    }
    checks.check(again != nullptr && loadErrors.size() == 1
            && loadErrors[0].find("could not register litevit::CSA version 1") != std::string::npos,
        "with CSA taken by another library, loading says so in one line", join(loadErrors));
    void* conflicting = hostRegistry().loadLibrary(library.c_str());
    checks.check(conflicting == nullptr && hostRegistry().lastEntryPointCount() == 1,
        "... and loadLibrary fails on the taken CSA rather than register it twice");
    if (again != nullptr)
    {
        dlclose(again);
    }
    hostRegistry().remove(foreign);
    checks.check(hostRegistry().registrations().empty(), "... and unloading leaves the registry empty");
#endif

    std::cout << "trt_harness: " << checks.passed() << " checks passed, " << checks.failed() << " failed (TensorRT "
              << NV_TENSORRT_MAJOR << "." << NV_TENSORRT_MINOR << "." << NV_TENSORRT_PATCH << " headers)\n";
    return checks.failed() == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
    {
        std::cerr << "usage: trt_harness LIBRARY FIXTURE.json\n";
        return 2;
    }
    std::cout << std::unitbuf; // every line out before a sanitizer report ends the process
    try
    {
        return run(argv[1], argv[2]);
    }
    catch (const std::exception& error)
    {
        std::cerr << "trt_harness: " << error.what() << '\n';
        return 2;
    }
}
