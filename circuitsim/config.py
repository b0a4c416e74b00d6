"""Designs and drives from TOML files (the command line's input format)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.devices import Diode, NmosAccess, SinhSelector

SELECTORS = {"sinh": SinhSelector, "diode": Diode}
CROSSBAR_KEYS = {"conductance", "conductance_file", "r_row", "r_col", "r_driver", "r_sense"}
DRIVE_KEYS = {"v_rows", "v_cols", "v_gates"}


def _check_keys(section: str, given, allowed) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise ValueError(f"[{section}]: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")


def _load_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".csv":
        return np.loadtxt(path, delimiter=",", ndmin=2)
    raise ValueError(f"{path}: conductance_file must be .npy or .csv")


def _device(section: str, table: dict, types: dict):
    params = dict(table)
    kind = params.pop("type", None)
    if kind not in types:
        raise ValueError(f"[{section}] type must be one of {sorted(types)}, got {kind!r}")
    try:
        return types[kind](**params)
    except TypeError as exc:
        raise ValueError(f"[{section}]: {exc}") from None


def crossbar_from_dict(doc: dict, base_dir: Path = Path(".")) -> Crossbar:
    """Crossbar from the [crossbar], [selector] and [transistor] tables of a design document."""
    _check_keys("top level", doc, {"crossbar", "selector", "transistor", "drive"})
    table = dict(doc.get("crossbar", {}))
    _check_keys("crossbar", table, CROSSBAR_KEYS)
    if ("conductance" in table) == ("conductance_file" in table):
        raise ValueError("[crossbar] needs exactly one of conductance (nested list, S) or conductance_file")
    if "conductance_file" in table:
        table["conductance"] = _load_array(base_dir / table.pop("conductance_file"))
    selector = _device("selector", doc["selector"], SELECTORS) if "selector" in doc else None
    transistor = _device("transistor", {"type": "nmos", **doc["transistor"]}, {"nmos": NmosAccess}) \
        if "transistor" in doc else None
    return Crossbar(selector=selector, transistor=transistor, **table)


def load_design(path: str | Path) -> tuple[Crossbar, dict]:
    """(crossbar, drive keyword arguments) from a TOML design file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    xb = crossbar_from_dict(doc, path.parent)
    drive = dict(doc.get("drive", {}))
    _check_keys("drive", drive, DRIVE_KEYS)
    if "v_rows" not in drive:
        raise ValueError(f"{path}: [drive] needs v_rows (V)")
    return xb, drive
