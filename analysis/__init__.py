# SPDX-License-Identifier: GPL-2.0-only
"""migtrace analysis: pandas pipelines, plots, the simulator and the CLI.

Dependencies run one way: ``analysis`` imports ``dissect``, never the reverse.

``load``, ``summarize`` and ``summary_objects`` are imported lazily so that
``import analysis`` (and every ``migtrace`` subcommand) stays cheap: pandas
and the decoders load only when an analysis is asked for.
"""
from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("analysis.load", "load"),
    "Migration": ("analysis.load", "Migration"),
    "summarize": ("analysis.summary", "summarize"),
    "summary_objects": ("analysis.summary", "summary_objects"),
    "read_manifest": ("analysis.manifest", "read_manifest"),
    "find_runs": ("analysis.manifest", "find_runs"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


class _Package(types.ModuleType):
    """Keeps ``analysis.load`` the function whatever was imported first.

    Importing the submodule ``analysis.load`` binds it as an attribute of the
    package, which would shadow the function (``help(analysis.load)`` would
    document the module).  The module stays reachable as
    ``sys.modules["analysis.load"]`` and through ``from analysis.load import …``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "load" and isinstance(value, types.ModuleType) and hasattr(value, "load"):
            value = value.load
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
