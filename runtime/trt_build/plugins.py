"""Which plugin library a build or an engine needs, and loading it into TensorRT's registry
the way the installed release can (``load_library`` from 8.6, ``ctypes.CDLL`` on 8.5)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, Union

from litevit._io import sha256_file
from litevit.errors import LitevitError
from litevit.runtime.trt_build.features import TrtFeatures


PLUGIN_LIBRARY = "liblitevit_plugins.so"
PLUGINS_ENV = "LITEVIT_PLUGINS"
# The plugin "library" value (--plugins, $LITEVIT_PLUGINS, the sidecar) that means litevit's
# Python IPluginV3 plugins (litevit.plugins.python_plugin), registered in this process.
PYTHON_PLUGINS: Final = "python"


PluginSource = Union[Path, Literal["python"]]


# Libraries loaded into this process's plugin registry: TensorRT refuses to load one twice.
_LOADED_PLUGIN_LIBRARIES: set[Path] = set()


def plugin_library_path(explicit: str | os.PathLike[str] | None) -> PluginSource | None:
    """The plugin library to use: ``explicit`` (``--plugins``), else ``$LITEVIT_PLUGINS``, else none;
    the value ``python`` means litevit's Python plugins."""
    chosen = explicit if explicit is not None else os.environ.get(PLUGINS_ENV) or None
    if chosen is None:
        return None
    if chosen == PYTHON_PLUGINS:
        return PYTHON_PLUGINS
    path = Path(chosen).expanduser().resolve()
    if not path.is_file():
        origin = "--plugins" if explicit is not None else f"${PLUGINS_ENV}"
        raise LitevitError(f"the plugin library {str(path)!r} ({origin}) does not exist.")
    return path


def plugin_source_name(source: PluginSource) -> str:
    """How build lines and errors name a plugin source."""
    return "litevit.plugins.python_plugin" if source == PYTHON_PLUGINS else Path(source).name


def load_plugin_library(path: PluginSource) -> None:
    """Register the plugin creators of the library at ``path`` (or litevit's Python plugins)
    with TensorRT, once per process."""
    if path == PYTHON_PLUGINS:
        from litevit.plugins import python_plugin

        python_plugin.register()
        return
    import tensorrt as trt

    if path in _LOADED_PLUGIN_LIBRARIES:
        return
    features = TrtFeatures.from_version(trt.__version__)
    if features.registry_load_library:
        if trt.get_plugin_registry().load_library(str(path)) is None:
            raise LitevitError(
                f"TensorRT {trt.__version__} could not load the plugin library {str(path)!r} (it must "
                f"export getCreators or getPluginCreators, and none of its plugins may be registered "
                f"already)."
            )
    else:
        # TensorRT 8.5 has no load_library: the library's static initialisers register its creators.
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise LitevitError(f"the plugin library {str(path)!r} does not load: {exc}.") from None
    _LOADED_PLUGIN_LIBRARIES.add(path)


def plugin_registered(name: str, version: str, namespace: str) -> bool:
    """Whether a creator for plugin ``namespace::name`` version ``version`` is registered."""
    import tensorrt as trt

    registry = trt.get_plugin_registry()
    if TrtFeatures.from_version(trt.__version__).registry_get_creator:
        return registry.get_creator(name, version, namespace) is not None
    return registry.get_plugin_creator(name, version, namespace) is not None


def plugin_library_to_load(
    sidecar: Mapping[str, Any] | None, explicit: str | os.PathLike[str] | None
) -> PluginSource | None:
    """The plugin library to load before deserialising an engine: ``explicit``; else, for an
    engine without a sidecar, ``$LITEVIT_PLUGINS``; else, when the sidecar says the engine uses
    plugins, ``$LITEVIT_PLUGINS`` or the library it was built with (litevit's Python plugins for
    an engine built with them). None when none is needed."""
    if explicit is not None or sidecar is None:
        return plugin_library_path(explicit)
    plugins = sidecar.get("plugins")
    if not plugins:
        return None
    from_environment = plugin_library_path(None)
    if from_environment is not None:
        return from_environment
    if plugins["library"] == PYTHON_PLUGINS:
        return PYTHON_PLUGINS
    recorded = Path(plugins["library"])
    if not recorded.is_file():
        raise LitevitError(
            f"the engine uses TensorRT plugins from {str(recorded)!r}, which does not exist here: pass the "
            f"library with plugins=... or ${PLUGINS_ENV}."
        )
    return recorded


def plugins_record(source: PluginSource) -> dict[str, Any]:
    """The sidecar's ``plugins``: the library and its SHA-256, or ``python`` (no file to hash)."""
    if source == PYTHON_PLUGINS:
        return {"library": PYTHON_PLUGINS, "sha256": None}
    return {"library": str(source), "sha256": sha256_file(Path(source))}
