"""Reads parameter defaults from the SPICE model library in models/*.lib.

The .lib files are the single source of every default number: a numpy twin takes its
defaults from the `.subckt ... params:` or `.model` line of its SPICE rendering, so the
two can never drift apart.
"""
from __future__ import annotations

import functools
import re
from dataclasses import field
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([-+0-9.eE]+)")


def lib_path(lib_name: str) -> Path:
    """Absolute path of models/<lib_name>.lib."""
    path = MODELS_DIR / f"{lib_name}.lib"
    if not path.is_file():
        raise FileNotFoundError(f"model library {path} is missing")
    return path


@functools.cache
def _definitions(lib_name: str) -> dict[str, dict[str, float]]:
    """{subckt or model name: {parameter: default}} for one library file."""
    found: dict[str, dict[str, float]] = {}
    for line in lib_path(lib_name).read_text().splitlines():
        words = line.split()
        if len(words) < 2 or words[0].lower() not in (".subckt", ".model"):
            continue
        tail = line.split("params:", 1)[1] if "params:" in line else line
        found[words[1].lower()] = {k.lower(): float(v) for k, v in _ASSIGNMENT.findall(tail)}
    return found


def lib_default(lib_name: str, element: str, parameter: str) -> float:
    """Default value of `parameter` of subckt/model `element` in models/<lib_name>.lib."""
    params = _definitions(lib_name).get(element.lower())
    if params is None or parameter.lower() not in params:
        raise KeyError(f"{parameter} of {element} is not defined in {lib_path(lib_name)}")
    return params[parameter.lower()]


def lib_field(lib_name: str, element: str, parameter: str):
    """A dataclass field whose default is read from the library (see lib_default) when the class
    is defined, so help() and the signature show the number."""
    return field(default=lib_default(lib_name, element, parameter))
