"""Designs and drives from TOML files (the command line's input format)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from circuitsim.design import CAPACITANCES, Crossbar
from circuitsim.devices import Diode, NmosAccess, SinhSelector

SELECTORS = {"sinh": SinhSelector, "diode": Diode}
CROSSBAR_KEYS = {"conductance", "conductance_file", "r_row", "r_col", "r_driver", "r_sense", *CAPACITANCES}
DRIVE_KEYS = {"v_rows", "v_cols", "v_gates"}


def _check_keys(section: str, given, allowed) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise ValueError(f"[{section}]: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")


def _load_array(path: Path) -> np.ndarray:
    if path.suffix not in (".npy", ".csv"):
        raise ValueError(f"{path}: conductance_file must be .npy or .csv")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False, mmap_mode="r")  # Crossbar checks its size before reading it
        return np.loadtxt(path, delimiter=",", ndmin=2)
    except OSError as exc:
        raise ValueError(f"conductance_file {path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"conductance_file {path}: not a numeric {path.suffix} array ({exc})") from None


def read_text_file(path: Path, what: str) -> str:
    """The text of an input file, or a ValueError that says why it cannot be read (a folder,
    missing, unreadable, not text)."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not {what}")
    try:
        return path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file, so not {what}") from None


def _device(section: str, table: dict, types: dict):
    params = dict(table)
    kind = params.pop("type", None)
    if not isinstance(kind, str) or kind not in types:
        raise ValueError(f"[{section}] type must be one of {sorted(types)}, got {kind!r}")
    try:
        return types[kind](**params)
    except TypeError as exc:
        raise ValueError(f"[{section}]: {exc}") from None


def crossbar_from_dict(doc: dict, base_dir: Path = Path(".")) -> Crossbar:
    """Crossbar from the [crossbar], [selector] and [transistor] tables of a design document."""
    _check_keys("top level", doc, {"crossbar", "selector", "transistor", "drive"})
    for section, value in doc.items():
        if not isinstance(value, dict):
            raise ValueError(f"{section} must be a table ([{section}]), got {type(value).__name__} {value!r:.40}")
    table = dict(doc.get("crossbar", {}))
    _check_keys("crossbar", table, CROSSBAR_KEYS)
    if ("conductance" in table) == ("conductance_file" in table):
        raise ValueError("[crossbar] needs exactly one of conductance (nested list, S) or conductance_file")
    if "conductance_file" in table:
        name = table.pop("conductance_file")
        if not isinstance(name, str):
            raise TypeError(f"[crossbar] conductance_file must be a file name (text), got {name!r}")
        table["conductance"] = _load_array(base_dir / name)
    selector = _device("selector", doc["selector"], SELECTORS) if "selector" in doc else None
    transistor = _device("transistor", {"type": "nmos", **doc["transistor"]}, {"nmos": NmosAccess}) \
        if "transistor" in doc else None
    return Crossbar(selector=selector, transistor=transistor, **table)


def load_design(path: str | Path) -> tuple[Crossbar, dict]:
    """(crossbar, drive keyword arguments) from a TOML design file."""
    path = Path(path)
    try:
        doc = tomllib.loads(read_text_file(path, "a design file"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    xb = crossbar_from_dict(doc, path.parent)
    drive = dict(doc.get("drive", {}))
    _check_keys("drive", drive, DRIVE_KEYS)
    if "v_rows" not in drive:
        raise ValueError(f"{path}: [drive] needs v_rows (V)")
    return xb, drive
