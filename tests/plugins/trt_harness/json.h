// A small JSON reader for the harness's fixture (plugin_nodes.json): objects, arrays, strings
// (\" \\ \/ \n \t \u00XX escapes), integers, true/false/null. Numbers with a fraction or exponent
// are kept as doubles. Throws std::runtime_error naming the offset of the first bad character.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace harness
{

class Json
{
public:
    enum class Kind
    {
        kNull,
        kBool,
        kInt,
        kDouble,
        kString,
        kArray,
        kObject
    };

    Kind kind = Kind::kNull;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0.0;
    std::string text;
    std::vector<Json> items;
    std::map<std::string, Json> members;

    static Json parse(const std::string& source)
    {
        size_t at = 0;
        Json value = parseValue(source, at);
        skipSpace(source, at);
        if (at != source.size())
        {
            fail(at, "trailing characters");
        }
        return value;
    }

    const Json& operator[](const std::string& key) const
    {
        if (kind != Kind::kObject)
        {
            throw std::runtime_error("JSON: not an object (looking for '" + key + "')");
        }
        const auto found = members.find(key);
        if (found == members.end())
        {
            throw std::runtime_error("JSON: no member '" + key + "'");
        }
        return found->second;
    }

    bool has(const std::string& key) const
    {
        return kind == Kind::kObject && members.count(key) != 0;
    }

    const std::vector<Json>& array() const
    {
        if (kind != Kind::kArray)
        {
            throw std::runtime_error("JSON: not an array");
        }
        return items;
    }

    const std::string& string() const
    {
        if (kind != Kind::kString)
        {
            throw std::runtime_error("JSON: not a string");
        }
        return text;
    }

    int64_t integerValue() const
    {
        if (kind != Kind::kInt)
        {
            throw std::runtime_error("JSON: not an integer");
        }
        return integer;
    }

private:
    [[noreturn]] static void fail(size_t at, const std::string& what)
    {
        throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(at));
    }

    static void skipSpace(const std::string& s, size_t& at)
    {
        while (at < s.size() && (s[at] == ' ' || s[at] == '\n' || s[at] == '\r' || s[at] == '\t'))
        {
            ++at;
        }
    }

    static void expect(const std::string& s, size_t& at, const char* word)
    {
        for (const char* c = word; *c != '\0'; ++c, ++at)
        {
            if (at >= s.size() || s[at] != *c)
            {
                fail(at, std::string("expected '") + word + "'");
            }
        }
    }

    static std::string parseString(const std::string& s, size_t& at)
    {
        std::string out;
        ++at; // the opening quote
        while (true)
        {
            if (at >= s.size())
            {
                fail(at, "unterminated string");
            }
            const char c = s[at++];
            if (c == '"')
            {
                return out;
            }
            if (c != '\\')
            {
                out.push_back(c);
                continue;
            }
            if (at >= s.size())
            {
                fail(at, "unterminated escape");
            }
            const char e = s[at++];
            switch (e)
            {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'u':
            {
                if (at + 4 > s.size())
                {
                    fail(at, "short \\u escape");
                }
                const unsigned long code = std::stoul(s.substr(at, 4), nullptr, 16);
                if (code > 0x7F)
                {
                    fail(at, "only ASCII \\u escapes are supported");
                }
                out.push_back(static_cast<char>(code));
                at += 4;
                break;
            }
            default: fail(at, "unknown escape");
            }
        }
    }

    static Json parseValue(const std::string& s, size_t& at)
    {
        skipSpace(s, at);
        if (at >= s.size())
        {
            fail(at, "unexpected end");
        }
        Json value;
        const char c = s[at];
        if (c == '{')
        {
            value.kind = Kind::kObject;
            ++at;
            skipSpace(s, at);
            if (at < s.size() && s[at] == '}')
            {
                ++at;
                return value;
            }
            while (true)
            {
                skipSpace(s, at);
                if (at >= s.size() || s[at] != '"')
                {
                    fail(at, "expected a member name");
                }
                std::string key = parseString(s, at);
                skipSpace(s, at);
                expect(s, at, ":");
                value.members[key] = parseValue(s, at);
                skipSpace(s, at);
                if (at < s.size() && s[at] == ',')
                {
                    ++at;
                    continue;
                }
                expect(s, at, "}");
                return value;
            }
        }
        if (c == '[')
        {
            value.kind = Kind::kArray;
            ++at;
            skipSpace(s, at);
            if (at < s.size() && s[at] == ']')
            {
                ++at;
                return value;
            }
            while (true)
            {
                value.items.push_back(parseValue(s, at));
                skipSpace(s, at);
                if (at < s.size() && s[at] == ',')
                {
                    ++at;
                    continue;
                }
                expect(s, at, "]");
                return value;
            }
        }
        if (c == '"')
        {
            value.kind = Kind::kString;
            value.text = parseString(s, at);
            return value;
        }
        if (c == 't')
        {
            expect(s, at, "true");
            value.kind = Kind::kBool;
            value.boolean = true;
            return value;
        }
        if (c == 'f')
        {
            expect(s, at, "false");
            value.kind = Kind::kBool;
            return value;
        }
        if (c == 'n')
        {
            expect(s, at, "null");
            return value;
        }
        const size_t start = at;
        if (s[at] == '-')
        {
            ++at;
        }
        bool fraction = false;
        while (at < s.size()
            && ((s[at] >= '0' && s[at] <= '9') || s[at] == '.' || s[at] == 'e' || s[at] == 'E' || s[at] == '+'
                || (s[at] == '-' && at > start)))
        {
            fraction = fraction || s[at] == '.' || s[at] == 'e' || s[at] == 'E';
            ++at;
        }
        if (at == start)
        {
            fail(at, "unexpected character");
        }
        const std::string number = s.substr(start, at - start);
        if (fraction)
        {
            value.kind = Kind::kDouble;
            value.real = std::stod(number);
        }
        else
        {
            value.kind = Kind::kInt;
            value.integer = std::stoll(number);
        }
        return value;
    }
};

} // namespace harness
