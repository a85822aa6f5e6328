"""The Python API surface of each TensorRT release, read from the bindings' sources, and the
data file ``tensorrt_api_surface.json`` that ``fake_tensorrt.py`` follows.

NVIDIA's ``python/src/**/*.cpp`` (pybind11) and ``python/packaging/**/tensorrt/__init__.py`` at
each release tag of github.com/NVIDIA/TensorRT define what ``import tensorrt`` offers. Read here:

* classes and enums (``py::class_<...>(scope, "Name")``, ``py::enum_``, ``py::bind_vector``), with
  their bound bases, members (``.def``, ``.def_static``, ``.def_property*``, ``.def_readwrite``,
  ``.def_readonly``) with keyword names and how many are required, enum values (and
  ``.export_values()``, which copies them into the enclosing class: ``trt.Logger.WARNING``);
* members wrapped in ``utils::deprecate``/``utils::deprecateMember`` (deprecated in that release);
* the callbacks a trampoline class reads from a Python subclass (``py::get_override(.., "name")``,
  ``PLUGIN_API_CATCH("name")``, ``PYBIND11_OVERLOAD*(.., "name", ..)``): what TensorRT calls or
  reads on litevit's Python plugins;
* module functions (``m.def``), module attributes (``m.attr("name") =``), and the functions the
  package's ``__init__.py`` defines (``nptype``, ``volume``).

``python tests/runtime/tensorrt_api.py --mirror /path/to/NVIDIA-TensorRT.git`` rewrites the JSON;
``test_tensorrt_api.py`` checks that it matches the sources when that clone is present.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

SURFACE = Path(__file__).resolve().with_name("tensorrt_api_surface.json")
FORMAT = "litevit.tensorrt-python-api/1"
# Release tag per TensorRT version litevit supports (and the two the fake also models: 10.8, the
# first after the plugin-precedence change, and 10.15, the first with ENABLE_PLUGIN_OVERRIDE).
TAGS = {
    "8.5": "8.5.3",
    "8.6": "v8.6.1",
    "10.3": "v10.3.0",
    "10.4": "v10.4.0",
    "10.8": "v10.8.0",
    "10.13": "v10.13.3",
    "10.15": "v10.15",
    "11.1": "v11.1",
}

_MEMBER = re.compile(
    r"\.(def|def_static|def_property|def_property_readonly|def_readwrite|def_readonly|def_readonly_static"
    r"|def_property_static|def_property_readonly_static|value)\s*\(\s*\"(\w+)\""
)
_DECLARATION = re.compile(r"py::(class_|enum_|bind_vector)\s*<")
_CALLBACK = re.compile(
    r"get_override\([^;\"]*?\"(\w+)\"\)|PLUGIN_API_CATCH(?:_CAST)?\(\s*\"(\w+)\"|PYBIND11_OVERLOAD\w*\([^\"]*?\"(\w+)\""
)
_CLASS_HEAD = re.compile(r"\b(?:class|struct)\s+(\w+)\s*(?:final\s*)?(?::([^{;]*))?\{")


def strip_comments(text: str) -> str:
    """The C++ source without comments; string literals (raw ones too) are kept as they are."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            delimiter = text[i + 2 : text.index("(", i)]
            end = text.index(")" + delimiter + '"', i) + len(delimiter) + 2
            out.append(text[i:end])
            i = end
        elif text[i] in "\"'":
            quote, j = text[i], i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _balanced(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at ``start`` (strings skipped)."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in "\"'":
            j = i + 1
            while j < len(text) and text[j] != char:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if char == open_:
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_}{close} at {start}")


def statements(text: str) -> list[str]:
    """Split at the semicolons outside parentheses and brackets (lambda bodies stay whole)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char in "\"'":
            j = i + 1
            while j < len(text) and text[j] != char:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == ";" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _template_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the ``<...>`` opening at ``start``, and the index after it."""
    end = _balanced(text, start, "<", ">")
    inner, args, depth, current = text[start + 1 : end - 1], [], 0, []
    for char in inner:
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        if char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    args.append("".join(current).strip())
    return args, end


def _signature(call: str, kind: str) -> str:
    """One ``.def(...)`` as text: ``[deprecated ]KIND(arg, arg=)`` with its keyword names
    (``"x"_a``; ``=`` marks a default) -- ``method()`` when the binding names none."""
    names = re.findall(r"\"(\w+)\"_a(\s*=)?", call)
    args = ", ".join(name + ("=" if default else "") for name, default in names)
    # utils::deprecate / deprecateMember warn in every build; the *InTrtRtxOnly variants only in
    # TensorRT-RTX, which litevit does not target.
    deprecated = re.search(r"\butils::deprecate(Member)?\s*\(", call) is not None
    return ("deprecated " if deprecated else "") + f"{kind}({args})"


def parse_signature(text: str) -> dict[str, Any]:
    """The parts of a :func:`_signature` string."""
    deprecated = text.startswith("deprecated ")
    kind, _, args = text.removeprefix("deprecated ").partition("(")
    names = [a.strip() for a in args.rstrip(")").split(",") if a.strip()]
    return {
        "kind": kind,
        "deprecated": deprecated,
        "args": [a.rstrip("=") for a in names],
        "required": sum(1 for a in names if not a.endswith("=")),
    }


def _trampoline_callbacks(text: str) -> dict[str, dict[str, Any]]:
    """Per C++ class defined in the file: its bases and the callbacks it reads from Python."""
    classes: dict[str, dict[str, Any]] = {}
    for match in _CLASS_HEAD.finditer(text):
        body_end = _balanced(text, match.end() - 1, "{", "}")
        body = text[match.end() : body_end]
        callbacks = {next(g for g in found if g) for found in _CALLBACK.findall(body)}
        bases = [re.sub(r"<.*", "", b).split()[-1] for b in (match.group(2) or "").split(",") if b.strip()]
        classes[match.group(1)] = {"bases": bases, "callbacks": callbacks}
    return classes


def parse_bindings(sources: dict[str, str]) -> dict[str, Any]:
    """The surface defined by the pybind11 ``sources`` (path -> text) of one release."""
    classes: dict[str, dict[str, Any]] = {}
    cpp_names: dict[str, str] = {}  # C++ type -> Python name
    trampolines: dict[str, dict[str, Any]] = {}
    functions: dict[str, list[dict[str, Any]]] = {}
    attributes: set[str] = set()
    texts = {path: strip_comments(text) for path, text in sources.items()}
    for text in texts.values():
        trampolines.update(_trampoline_callbacks(text))
    for text in texts.values():
        variables: dict[str, str] = {"m": ""}
        for statement in statements(text):
            target = None
            declaration = _DECLARATION.search(statement)
            if declaration is not None:
                kind = declaration.group(1)
                targs, after = _template_args(statement, declaration.end() - 1)
                head = re.match(r"\s*(\w+)?\s*[({]\s*(\w+)\s*,\s*\"(\w+)\"", statement[after:])
                if head is not None:
                    variable, scope, name = head.groups()
                    qualified = f"{variables[scope]}.{name}" if variables.get(scope) else name
                    entry = classes.setdefault(
                        qualified,
                        {
                            "kind": {"class_": "class", "enum_": "enum", "bind_vector": "list"}[kind],
                            "cpp": targs[0],
                            "template": targs[1:],
                            "members": {},
                            "values": [],
                        },
                    )
                    cpp_names[targs[0]] = qualified
                    if variable:
                        variables[variable] = qualified
                    target = qualified
            else:
                start = re.match(r"\s*(\w+)\s*\.", statement)
                if start is not None and start.group(1) in variables and start.group(1) != "m":
                    target = variables[start.group(1)]
            if target is not None:
                entry = classes[target]
                for member in _MEMBER.finditer(statement):
                    kind, name = member.groups()
                    if kind == "value":
                        entry["values"].append(name)
                        continue
                    call_end = _balanced(statement, statement.index("(", member.start() + 1), "(", ")")
                    role = {"def": "method", "def_static": "static"}.get(kind, "attribute")
                    entry["members"].setdefault(name, []).append(
                        _signature(statement[member.start() : call_end], role)
                    )
                if ".export_values()" in statement and "." in target:
                    classes[target.rsplit(".", 1)[0]].setdefault("exported", []).extend(entry["values"])
            for found in re.finditer(r"\bm\s*\.\s*def\s*\(\s*\"(\w+)\"", statement):
                call_end = _balanced(statement, statement.index("(", found.start()), "(", ")")
                functions.setdefault(found.group(1), []).append(
                    _signature(statement[found.start() : call_end], "function")
                )
            attributes.update(re.findall(r"\bm\s*\.\s*attr\s*\(\s*\"(\w+)\"\s*\)\s*=", statement))

    def callbacks_of(cpp: str, seen: set[str]) -> set[str]:
        if cpp in seen or cpp not in trampolines:
            return set()
        seen.add(cpp)
        found = set(trampolines[cpp]["callbacks"])
        for base in trampolines[cpp]["bases"]:
            found |= callbacks_of(base, seen)
        return found

    surface_classes: dict[str, Any] = {}
    for name, entry in sorted(classes.items()):
        bases = [cpp_names[t] for t in entry["template"] if t in cpp_names]
        callbacks: set[str] = set()
        for t in entry["template"]:
            callbacks |= callbacks_of(re.sub(r"<.*", "", t).split("::")[-1], set())
        record: dict[str, Any] = {"kind": entry["kind"], "bases": bases}
        if entry["members"]:
            record["members"] = dict(sorted(entry["members"].items()))
        if entry["values"]:
            record["values"] = entry["values"]
        if entry.get("exported"):
            record["exported_values"] = entry["exported"]
        if callbacks:
            record["callbacks"] = sorted(callbacks)
        surface_classes[name] = record
    return {
        "classes": surface_classes,
        "functions": dict(sorted(functions.items())),
        "attributes": sorted(attributes),
    }


def package_functions(init_py: str) -> list[str]:
    """The public functions the package's ``__init__.py`` defines."""
    # Build-time placeholders (##TENSORRT_MODULE##, ...) are neither Python nor needed here.
    tree = ast.parse(re.sub(r"##\w+##", "placeholder", init_py))
    return sorted(n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_"))


def _git(mirror: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(mirror), *args], check=True, capture_output=True, text=True
    ).stdout


def release_surface(mirror: Path, tag: str) -> dict[str, Any]:
    files = _git(mirror, "ls-tree", "-r", "--name-only", tag, "python/src", "python/packaging").split()
    cpp = {f: _git(mirror, "show", f"{tag}:{f}") for f in files if f.endswith(".cpp")}
    init = next(
        f
        for f in (
            "python/packaging/bindings_wheel/tensorrt/__init__.py",
            "python/packaging/tensorrt/__init__.py",
        )
        if f in files
    )
    surface = parse_bindings(cpp)
    surface["package_functions"] = package_functions(_git(mirror, "show", f"{tag}:{init}"))
    return {"tag": tag, "commit": _git(mirror, "rev-list", "-n", "1", tag).strip(), **surface}


def build_surface(mirror: Path) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "about": "The Python API of each TensorRT release as its binding sources define it "
        "(github.com/NVIDIA/TensorRT python/src and python/packaging at the tag); written by "
        "tests/runtime/tensorrt_api.py. fake_tensorrt.py exposes no more than this per version.",
        "releases": {version: release_surface(mirror, tag) for version, tag in TAGS.items()},
    }


def dumps(value: Any, depth: int = 0) -> str:
    """JSON with one line per class, so that a change reads as a line."""
    if depth >= 4 or not isinstance(value, dict):
        return json.dumps(value)
    pad = " " * (depth + 1)
    items = [f"{pad}{json.dumps(k)}: {dumps(v, depth + 1)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="a clone of NVIDIA/TensorRT with its tags")
    args = parser.parse_args()
    SURFACE.write_text(dumps(build_surface(args.mirror)) + "\n")
    print(f"wrote {SURFACE} ({SURFACE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
