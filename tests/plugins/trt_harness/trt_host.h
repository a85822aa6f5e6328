// The TensorRT side of the harness: what a TensorRT release hands a plugin library, written against
// that release's real headers. A logger that records every line, the logger finder of 8.6+, the
// plugin registry with IPluginRegistry::loadLibrary done as its header documents it, the
// IExprBuilder of dynamic shapes (over apiv::VExprBuilder, as libnvinfer implements it) and, from
// 10.0, the error recorder and resource context an IPluginV3 is attached to.
//
// Test scaffolding, never shipped. It does what the headers promise; where they are silent it
// follows NVIDIA's own code (trtexec, samples/common, plugin/vc, onnx-tensorrt), named at each place.
#pragma once

#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#define HARNESS_TRT_AT_LEAST(major, minor)                                                                        \
    (NV_TENSORRT_MAJOR > (major) || (NV_TENSORRT_MAJOR == (major) && NV_TENSORRT_MINOR >= (minor)))

namespace harness
{

// What the registry of this release registers: IPluginCreatorInterface from 10.0, IPluginCreator before.
#if NV_TENSORRT_MAJOR >= 10
using RegistryCreator = nvinfer1::IPluginCreatorInterface;
#else
using RegistryCreator = nvinfer1::IPluginCreator;
#endif

// Every line the plugins log, with its severity.
class RecordingLogger final : public nvinfer1::ILogger
{
public:
    struct Line
    {
        Severity severity;
        std::string text;
    };

    void log(Severity severity, const char* message) noexcept override
    {
        lines.push_back({severity, message != nullptr ? message : ""});
    }

    std::vector<std::string> errors(size_t since = 0) const
    {
        std::vector<std::string> found;
        for (size_t i = since; i < lines.size(); ++i)
        {
            if (lines[i].severity == Severity::kERROR || lines[i].severity == Severity::kINTERNAL_ERROR)
            {
                found.push_back(lines[i].text);
            }
        }
        return found;
    }

    std::vector<Line> lines;
};

#if HARNESS_TRT_AT_LEAST(8, 6)
// What loadLibrary passes to the library's setLoggerFinder (8.6+).
class LoggerFinder final : public nvinfer1::ILoggerFinder
{
public:
    explicit LoggerFinder(nvinfer1::ILogger& logger)
        : logger_(logger)
    {
    }

    nvinfer1::ILogger* findLogger() override
    {
        return &logger_;
    }

private:
    nvinfer1::ILogger& logger_;
};
#endif

// (name, version, namespace) of a registered creator and who registered it.
struct Registration
{
    std::string name;
    std::string version;
    std::string pluginNamespace;
    RegistryCreator* creator;
    void* library; // the loadLibrary handle that registered it, nullptr for registerCreator
};

// The name, version and namespace a creator reports, whichever interface it has.
inline void creatorIdentity(RegistryCreator& creator, std::string& name, std::string& version, std::string& ns)
{
#if NV_TENSORRT_MAJOR >= 10
    if (std::strcmp(creator.getInterfaceInfo().kind, "PLUGIN CREATOR_V1") == 0)
    {
        auto& v2 = static_cast<nvinfer1::IPluginCreator&>(creator);
        name = v2.getPluginName();
        version = v2.getPluginVersion();
        ns = v2.getPluginNamespace();
        return;
    }
    auto& v3 = static_cast<nvinfer1::IPluginCreatorV3One&>(creator);
    name = v3.getPluginName();
    version = v3.getPluginVersion();
    ns = v3.getPluginNamespace();
#else
    name = creator.getPluginName();
    version = creator.getPluginVersion();
    ns = creator.getPluginNamespace();
#endif
}

// IPluginRegistry of this release. registerCreator refuses a (name, version, namespace) that is
// taken ("Returns false if one with same type is already registered"); loadLibrary dlopens the
// library, calls its setLoggerFinder and the entry point of this release and registers what it
// returns, failing "if any of the plugins are already registered" (NvInferRuntimeCommon.h).
class Registry final : public nvinfer1::IPluginRegistry
{
public:
    explicit Registry(nvinfer1::ILogger& logger)
        : logger_(logger)
#if HARNESS_TRT_AT_LEAST(8, 6)
        , finder_(logger)
#endif
    {
    }

    ~Registry() override = default;

    const std::vector<Registration>& registrations() const
    {
        return entries_;
    }

    // How many creators loadLibrary took from the library's entry point the last time it ran.
    int32_t lastEntryPointCount() const
    {
        return lastEntryPointCount_;
    }

    // The creator registered as (name, version, namespace), or nullptr.
    RegistryCreator* find(const std::string& name, const std::string& version, const std::string& ns) const
    {
        for (const Registration& entry : entries_)
        {
            if (entry.name == name && entry.version == version && entry.pluginNamespace == ns)
            {
                return entry.creator;
            }
        }
        return nullptr;
    }

    bool add(RegistryCreator& creator, const char* pluginNamespace, void* library) noexcept
    {
        try
        {
            std::string name;
            std::string version;
            std::string ns;
            creatorIdentity(creator, name, version, ns);
            const std::string key = pluginNamespace != nullptr ? pluginNamespace : "";
            if (find(name, version, key) != nullptr)
            {
                logger_.log(nvinfer1::ILogger::Severity::kERROR,
                    ("registry: " + key + "::" + name + " version " + version + " is already registered").c_str());
                return false;
            }
            entries_.push_back({name, version, key, &creator, library});
            return true;
        }
        catch (...)
        {
            return false;
        }
    }

    bool remove(const RegistryCreator& creator) noexcept
    {
        const auto found = std::find_if(
            entries_.begin(), entries_.end(), [&](const Registration& entry) { return entry.creator == &creator; });
        if (found == entries_.end())
        {
            return false;
        }
        entries_.erase(found);
        return true;
    }

#if NV_TENSORRT_MAJOR < 11
    bool registerCreator(nvinfer1::IPluginCreator& creator, const nvinfer1::AsciiChar* const pluginNamespace) noexcept override
    {
        ++v2RegisterCalls;
        return add(creator, pluginNamespace, nullptr);
    }

    nvinfer1::IPluginCreator* const* getPluginCreatorList(int32_t* const numCreators) const noexcept override
    {
        v2List_.clear();
        for (const Registration& entry : entries_)
        {
            if (auto* creator = asV2(entry.creator))
            {
                v2List_.push_back(creator);
            }
        }
        *numCreators = static_cast<int32_t>(v2List_.size());
        return v2List_.empty() ? nullptr : v2List_.data();
    }

    nvinfer1::IPluginCreator* getPluginCreator(const nvinfer1::AsciiChar* const pluginName,
        const nvinfer1::AsciiChar* const pluginVersion, const nvinfer1::AsciiChar* const pluginNamespace) noexcept override
    {
        RegistryCreator* creator = find(pluginName, pluginVersion, pluginNamespace != nullptr ? pluginNamespace : "");
        return creator != nullptr ? asV2(creator) : nullptr;
    }

    bool deregisterCreator(const nvinfer1::IPluginCreator& creator) noexcept override
    {
        return remove(creator);
    }
#endif

    void setErrorRecorder(nvinfer1::IErrorRecorder* const recorder) noexcept override
    {
        recorder_ = recorder;
    }

    nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return recorder_;
    }

#if HARNESS_TRT_AT_LEAST(8, 6)
    bool isParentSearchEnabled() const override
    {
        return parentSearch_;
    }

    void setParentSearchEnabled(const bool enabled) override
    {
        parentSearch_ = enabled;
    }

    // As trtexec --dynamicPlugins and Python's load_library use it. The entry point is the one this
    // release reads: getPluginCreators on 8.6, getCreators from 10 (a library without it is refused
    // there, NVIDIA/TensorRT issue 4121); setLoggerFinder is the other symbol the developer guide
    // and trtexec's README require.
    PluginLibraryHandle loadLibrary(const nvinfer1::AsciiChar* pluginPath) noexcept override
    {
        lastEntryPointCount_ = -1;
        void* handle = dlopen(pluginPath, RTLD_LAZY | RTLD_LOCAL);
        if (handle == nullptr)
        {
            logger_.log(nvinfer1::ILogger::Severity::kERROR, (std::string("loadLibrary: ") + dlerror()).c_str());
            return nullptr;
        }
        using SetLoggerFinder = void (*)(nvinfer1::ILoggerFinder*);
        auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
#if NV_TENSORRT_MAJOR >= 10
        using EntryPoint = nvinfer1::IPluginCreatorInterface* const* (*) (int32_t&);
        const char* entryName = "getCreators";
#else
        using EntryPoint = nvinfer1::IPluginCreator* const* (*) (int32_t&);
        const char* entryName = "getPluginCreators";
#endif
        auto entryPoint = reinterpret_cast<EntryPoint>(dlsym(handle, entryName));
        if (setLoggerFinder == nullptr || entryPoint == nullptr)
        {
            logger_.log(nvinfer1::ILogger::Severity::kERROR,
                (std::string("loadLibrary: SymbolAddress for ") + (entryPoint == nullptr ? entryName : "setLoggerFinder")
                    + " could not be loaded")
                    .c_str());
            dlclose(handle);
            return nullptr;
        }
        setLoggerFinder(&finder_);
        int32_t count = 0;
        auto* const* creators = entryPoint(count);
        lastEntryPointCount_ = count;
        std::vector<RegistryCreator*> added;
        for (int32_t i = 0; i < count; ++i)
        {
            std::string name;
            std::string version;
            std::string ns;
            creatorIdentity(*creators[i], name, version, ns);
            if (!add(*creators[i], ns.c_str(), handle))
            {
                for (RegistryCreator* creator : added)
                {
                    remove(*creator);
                }
                dlclose(handle);
                return nullptr;
            }
            added.push_back(creators[i]);
        }
        return handle;
    }

    void deregisterLibrary(PluginLibraryHandle handle) noexcept override
    {
        entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                           [&](const Registration& entry) { return entry.library == handle; }),
            entries_.end());
        dlclose(handle);
    }
#endif

#if NV_TENSORRT_MAJOR >= 10
    bool registerCreator(nvinfer1::IPluginCreatorInterface& creator, const nvinfer1::AsciiChar* const pluginNamespace) noexcept override
    {
        ++interfaceRegisterCalls;
        return add(creator, pluginNamespace, nullptr);
    }

    nvinfer1::IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override
    {
        allList_.clear();
        for (const Registration& entry : entries_)
        {
            allList_.push_back(entry.creator);
        }
        *numCreators = static_cast<int32_t>(allList_.size());
        return allList_.empty() ? nullptr : allList_.data();
    }

    nvinfer1::IPluginCreatorInterface* getCreator(const nvinfer1::AsciiChar* const pluginName,
        const nvinfer1::AsciiChar* const pluginVersion, const nvinfer1::AsciiChar* const pluginNamespace) noexcept override
    {
        return find(pluginName, pluginVersion, pluginNamespace != nullptr ? pluginNamespace : "");
    }

    bool deregisterCreator(const nvinfer1::IPluginCreatorInterface& creator) noexcept override
    {
        return remove(creator);
    }

    // litevit's plugins hold no shared resources: a call here is a harness failure.
    nvinfer1::IPluginResource* acquirePluginResource(const nvinfer1::AsciiChar*, nvinfer1::IPluginResource*) noexcept override
    {
        ++unexpectedCalls;
        return nullptr;
    }

    int32_t releasePluginResource(const nvinfer1::AsciiChar*) noexcept override
    {
        ++unexpectedCalls;
        return 1;
    }
#endif

#if NV_TENSORRT_MAJOR >= 11
    nvinfer1::IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const numCreators) noexcept override
    {
        return getAllCreators(numCreators);
    }
#endif

    int v2RegisterCalls = 0;        // registerCreator(IPluginCreator&, ...): deprecated from 10.0
    int interfaceRegisterCalls = 0; // registerCreator(IPluginCreatorInterface&, ...): 10.0 on
    int unexpectedCalls = 0;

private:
#if NV_TENSORRT_MAJOR < 11
    static nvinfer1::IPluginCreator* asV2(RegistryCreator* creator)
    {
#if NV_TENSORRT_MAJOR >= 10
        // The 10.x registry's getPluginCreator returns nullptr for a creator that is not an
        // IPluginCreator (NvInferRuntimeCommon.h).
        if (std::strcmp(creator->getInterfaceInfo().kind, "PLUGIN CREATOR_V1") != 0)
        {
            return nullptr;
        }
        return static_cast<nvinfer1::IPluginCreator*>(creator);
#else
        return creator;
#endif
    }

    mutable std::vector<nvinfer1::IPluginCreator*> v2List_;
#endif
#if NV_TENSORRT_MAJOR >= 10
    mutable std::vector<nvinfer1::IPluginCreatorInterface*> allList_;
#endif
    nvinfer1::ILogger& logger_;
#if HARNESS_TRT_AT_LEAST(8, 6)
    LoggerFinder finder_;
    bool parentSearch_ = true;
#endif
    nvinfer1::IErrorRecorder* recorder_ = nullptr;
    std::vector<Registration> entries_;
    int32_t lastEntryPointCount_ = -1;
};

// --- Dynamic shapes: IDimensionExpr / IExprBuilder over apiv::VDimensionExpr / VExprBuilder ---------

using DimValue = decltype(std::declval<nvinfer1::IDimensionExpr>().getConstantValue());

// One dimension expression: a constant, a symbol (a dim TensorRT knows only at run time) or an
// operation of two expressions. Constants fold as TensorRT folds them.
class Expr final : public nvinfer1::IDimensionExpr
{
public:
    enum class Kind
    {
        kConstant,
        kSymbol,
        kOperation
    };

    Expr(Kind kind, int64_t value, std::string symbol, nvinfer1::DimensionOperation op, const Expr* a, const Expr* b)
        : kind_(kind)
        , value_(value)
        , symbol_(std::move(symbol))
        , op_(op)
        , a_(a)
        , b_(b)
        , impl_(*this)
    {
        mImpl = &impl_;
    }

    ~Expr() override = default;

    int64_t evaluate(const std::map<std::string, int64_t>& bindings) const
    {
        switch (kind_)
        {
        case Kind::kConstant: return value_;
        case Kind::kSymbol:
        {
            const auto found = bindings.find(symbol_);
            if (found == bindings.end())
            {
                throw std::runtime_error("no value for the symbol " + symbol_);
            }
            return found->second;
        }
        case Kind::kOperation: return apply(op_, a_->evaluate(bindings), b_->evaluate(bindings));
        }
        return 0;
    }

    std::string text() const
    {
        switch (kind_)
        {
        case Kind::kConstant: return std::to_string(value_);
        case Kind::kSymbol: return symbol_;
        case Kind::kOperation:
            return "(" + a_->text() + " " + opName(op_) + " " + b_->text() + ")";
        }
        return "?";
    }

    bool constant() const
    {
        return kind_ == Kind::kConstant;
    }

    int64_t value() const
    {
        return value_;
    }

    static int64_t apply(nvinfer1::DimensionOperation op, int64_t a, int64_t b)
    {
        switch (op)
        {
        case nvinfer1::DimensionOperation::kSUM: return a + b;
        case nvinfer1::DimensionOperation::kPROD: return a * b;
        case nvinfer1::DimensionOperation::kMAX: return std::max(a, b);
        case nvinfer1::DimensionOperation::kMIN: return std::min(a, b);
        case nvinfer1::DimensionOperation::kSUB: return a - b;
        case nvinfer1::DimensionOperation::kEQUAL: return a == b ? 1 : 0;
        case nvinfer1::DimensionOperation::kLESS: return a < b ? 1 : 0;
        case nvinfer1::DimensionOperation::kFLOOR_DIV: return floorDiv(a, b);
        case nvinfer1::DimensionOperation::kCEIL_DIV: return -floorDiv(-a, b);
        }
        throw std::runtime_error("unknown DimensionOperation");
    }

    static int64_t floorDiv(int64_t a, int64_t b)
    {
        if (b == 0)
        {
            throw std::runtime_error("a dim expression divides by zero");
        }
        const int64_t quotient = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient;
    }

    static const char* opName(nvinfer1::DimensionOperation op)
    {
        switch (op)
        {
        case nvinfer1::DimensionOperation::kSUM: return "+";
        case nvinfer1::DimensionOperation::kPROD: return "*";
        case nvinfer1::DimensionOperation::kMAX: return "max";
        case nvinfer1::DimensionOperation::kMIN: return "min";
        case nvinfer1::DimensionOperation::kSUB: return "-";
        case nvinfer1::DimensionOperation::kEQUAL: return "==";
        case nvinfer1::DimensionOperation::kLESS: return "<";
        case nvinfer1::DimensionOperation::kFLOOR_DIV: return "//";
        case nvinfer1::DimensionOperation::kCEIL_DIV: return "ceildiv";
        }
        return "?";
    }

private:
    class Impl final : public nvinfer1::apiv::VDimensionExpr
    {
    public:
        explicit Impl(const Expr& expr)
            : expr_(expr)
        {
        }

        bool isConstant() const override
        {
            return expr_.constant();
        }

        DimValue getConstantValue() const override
        {
            return static_cast<DimValue>(expr_.constant() ? expr_.value() : -1);
        }

#if NV_TENSORRT_MAJOR >= 10
        bool isSizeTensor() const override
        {
            return false;
        }
#endif

    private:
        const Expr& expr_;
    };

    Kind kind_;
    int64_t value_;
    std::string symbol_;
    nvinfer1::DimensionOperation op_;
    const Expr* a_;
    const Expr* b_;
    Impl impl_;
};

// The IExprBuilder a plugin's getOutputDimensions / getOutputShapes receives; owns its expressions.
class ExprBuilder final : public nvinfer1::IExprBuilder
{
public:
    ExprBuilder()
        : impl_(*this)
    {
        mImpl = &impl_;
    }

    ~ExprBuilder() override = default;

    const Expr* symbol(const std::string& name)
    {
        return make(Expr::Kind::kSymbol, 0, name, nvinfer1::DimensionOperation::kSUM, nullptr, nullptr);
    }

    const Expr* number(int64_t value)
    {
        return make(Expr::Kind::kConstant, value, "", nvinfer1::DimensionOperation::kSUM, nullptr, nullptr);
    }

    const Expr* combine(nvinfer1::DimensionOperation op, const Expr* a, const Expr* b)
    {
        if (a->constant() && b->constant())
        {
            return number(Expr::apply(op, a->value(), b->value()));
        }
        return make(Expr::Kind::kOperation, 0, "", op, a, b);
    }

    // Whether `dim` is one of this builder's expressions (a plugin must build its dims with it).
    const Expr* own(const nvinfer1::IDimensionExpr* dim) const
    {
        for (const std::unique_ptr<Expr>& expr : exprs_)
        {
            if (expr.get() == dim)
            {
                return expr.get();
            }
        }
        return nullptr;
    }

    // "4*s75 + 1" and the like, as the ONNX exporter writes symbolic dims: sums and differences of
    // products of integers and symbols.
    const Expr* parse(const std::string& text)
    {
        size_t at = 0;
        const Expr* result = parseSum(text, at);
        skip(text, at);
        if (at != text.size())
        {
            throw std::runtime_error("cannot read the dim expression '" + text + "'");
        }
        return result;
    }

private:
    class Impl final : public nvinfer1::apiv::VExprBuilder
    {
    public:
        explicit Impl(ExprBuilder& builder)
            : builder_(builder)
        {
        }

        const nvinfer1::IDimensionExpr* constant(DimValue value) override
        {
            return builder_.number(value);
        }

        const nvinfer1::IDimensionExpr* operation(nvinfer1::DimensionOperation op,
            const nvinfer1::IDimensionExpr& first, const nvinfer1::IDimensionExpr& second) override
        {
            const Expr* a = builder_.own(&first);
            const Expr* b = builder_.own(&second);
            if (a == nullptr || b == nullptr)
            {
                ++builder_.foreignOperands;
                return nullptr;
            }
            return builder_.combine(op, a, b);
        }

#if NV_TENSORRT_MAJOR >= 10
        // Size tensors (data-dependent output shapes): litevit's plugins have none.
        const nvinfer1::IDimensionExpr* declareSizeTensor(
            int32_t, const nvinfer1::IDimensionExpr&, const nvinfer1::IDimensionExpr&) override
        {
            ++builder_.foreignOperands;
            return nullptr;
        }
#endif

    private:
        ExprBuilder& builder_;
    };

    const Expr* make(Expr::Kind kind, int64_t value, const std::string& symbol, nvinfer1::DimensionOperation op,
        const Expr* a, const Expr* b)
    {
        exprs_.push_back(std::make_unique<Expr>(kind, value, symbol, op, a, b));
        return exprs_.back().get();
    }

    static void skip(const std::string& text, size_t& at)
    {
        while (at < text.size() && text[at] == ' ')
        {
            ++at;
        }
    }

    const Expr* parseFactor(const std::string& text, size_t& at)
    {
        skip(text, at);
        const size_t start = at;
        if (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])))
        {
            while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])))
            {
                ++at;
            }
            return number(std::stoll(text.substr(start, at - start)));
        }
        while (at < text.size() && (std::isalnum(static_cast<unsigned char>(text[at])) || text[at] == '_'))
        {
            ++at;
        }
        if (at == start)
        {
            throw std::runtime_error("cannot read the dim expression '" + text + "'");
        }
        return symbol(text.substr(start, at - start));
    }

    const Expr* parseProduct(const std::string& text, size_t& at)
    {
        const Expr* result = parseFactor(text, at);
        skip(text, at);
        while (at < text.size() && text[at] == '*')
        {
            ++at;
            result = combine(nvinfer1::DimensionOperation::kPROD, result, parseFactor(text, at));
            skip(text, at);
        }
        return result;
    }

    const Expr* parseSum(const std::string& text, size_t& at)
    {
        const Expr* result = parseProduct(text, at);
        skip(text, at);
        while (at < text.size() && (text[at] == '+' || text[at] == '-'))
        {
            const auto op = text[at] == '+' ? nvinfer1::DimensionOperation::kSUM : nvinfer1::DimensionOperation::kSUB;
            ++at;
            result = combine(op, result, parseProduct(text, at));
            skip(text, at);
        }
        return result;
    }

    Impl impl_;
    std::vector<std::unique_ptr<Expr>> exprs_;

public:
    int foreignOperands = 0; // operations on expressions this builder did not make
};

#if NV_TENSORRT_MAJOR >= 10
// The error recorder of the execution context an IPluginV3 is attached to.
class RecordingErrorRecorder final : public nvinfer1::IErrorRecorder
{
public:
    int32_t getNbErrors() const noexcept override
    {
        return static_cast<int32_t>(errors.size());
    }

    nvinfer1::ErrorCode getErrorCode(int32_t index) const noexcept override
    {
        return index >= 0 && index < getNbErrors() ? errors[static_cast<size_t>(index)].first
                                                  : nvinfer1::ErrorCode::kINVALID_ARGUMENT;
    }

    ErrorDesc getErrorDesc(int32_t index) const noexcept override
    {
        return index >= 0 && index < getNbErrors() ? errors[static_cast<size_t>(index)].second.c_str() : "";
    }

    bool hasOverflowed() const noexcept override
    {
        return false;
    }

    void clear() noexcept override
    {
        errors.clear();
    }

    bool reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept override
    {
        errors.emplace_back(code, desc != nullptr ? desc : "");
        return true;
    }

    RefCount incRefCount() noexcept override
    {
        return ++references_;
    }

    RefCount decRefCount() noexcept override
    {
        return --references_;
    }

    std::vector<std::pair<nvinfer1::ErrorCode, std::string>> errors;

private:
    RefCount references_ = 0;
};

// What attachToContext receives.
class ResourceContext final : public nvinfer1::IPluginResourceContext
{
public:
    explicit ResourceContext(nvinfer1::IErrorRecorder& recorder)
        : recorder_(recorder)
    {
    }

    ~ResourceContext() override = default;

    nvinfer1::IGpuAllocator* getGpuAllocator() const noexcept override
    {
        return nullptr;
    }

    nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return &recorder_;
    }

private:
    nvinfer1::IErrorRecorder& recorder_;
};
#endif

} // namespace harness
