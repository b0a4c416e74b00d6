"""Circuit -> SPICE deck text. Only validated names and finite numbers reach the deck."""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from circuitsim import __version__
from circuitsim.circuit import Circuit
from circuitsim.devices.library import lib_path

SOURCE_PREFIX = ("Vin", "Vout", "Vg")  # by Circuit.fixed_kind: row driver, column sense, gate
INCLUDE_LINE = re.compile(r'^\.include "(?P<path>[^"\n]+)"$', re.MULTILINE)


def source_names(circuit: Circuit) -> list[str]:
    """SPICE names of the voltage sources, in the order of circuit.fixed."""
    return [f"{SOURCE_PREFIX[k]}{line}" for k, line in zip(circuit.fixed_kind, circuit.fixed_line)]


def number(x: float) -> str:
    if not np.isfinite(x):  # validated upstream; a last guard, since a deck is code
        raise ValueError(f"non-finite number {x!r} cannot go into a SPICE deck")
    return repr(float(x))


def _params(params: dict[str, float]) -> str:
    return " ".join(f"{k}={number(v)}" for k, v in params.items())


def render(circuit: Circuit, fixed_volts: np.ndarray, analysis: str = ".op", *,
           waveforms: Sequence[str] | None = None, cells: Sequence | None = None) -> str:
    """The SPICE deck of `circuit` with its sources at `fixed_volts` (one value per source).

    For transients: `waveforms` gives each source's value text instead of `DC <volts>`
    (e.g. 'PWL(0 0 1e-6 1)', built from numbers by the caller); `cells` gives one stateful
    device per cell (row-major, e.g. circuitsim.devices.memristors), rendered as instances
    XC<i>_<j> of its subckt with its parameters instead of Rcell.
    """
    xb = circuit.xb
    rows, cols = xb.shape
    names = circuit.node_names
    sel, tr = xb.selector, xb.transistor
    libs = sorted({d.spice_lib for d in (sel, tr, *(cells or ())) if d is not None})
    out = [
        f"* circuitsim {__version__}: {rows}x{cols} crossbar, {xb.cell_type} cells",
        "* rows are driven at the left end (node in<i>), columns are sensed at the bottom (node out<j>)",
        "* nodes: r<i>c<j> row wire at cell (i,j), b<i>c<j> column wire, m<i>c<j> inside the cell",
        "* zero-ohm segments are merged into one node; floating lines have no source",
        ".options klu",
    ]
    out += [f'.include "{lib_path(lib)}"' for lib in libs]
    if tr is not None:
        out.append(tr.spice_model_line())
    out.append("* sources: drivers (Vin), sense nodes (Vout), gates (Vg)")
    values = waveforms if waveforms is not None else [f"DC {number(v)}" for v in fixed_volts]
    out += [f"{s} {names[node]} 0 {value}" for s, node, value in zip(source_names(circuit), circuit.fixed, values)]
    out.append("* wire segments: Rrow<i>_<j> feeds cell (i,j) of row i; Rcol<i>_<j> leaves cell (i,j) downwards")
    out += [f"{n} {names[a]} {names[b]} {number(r)}"
            for n, a, b, r in zip(circuit.res_names, circuit.res_a, circuit.res_b, circuit.res_ohm)]
    out.append("* cells: Rcell = 1/conductance, or XC = device subckt (open cells are left out)")
    for k, (hi, lo, g) in enumerate(zip(circuit.cell_hi, circuit.cell_lo, circuit.cell_g)):
        if g > 0 and cells is not None:
            out.append(f"XC{k // cols}_{k % cols} {names[hi]} {names[lo]} {cells[k].spice_subckt} "
                       f"params: {_params(cells[k].spice_params())}")
        elif g > 0:
            out.append(f"Rcell{k // cols}_{k % cols} {names[hi]} {names[lo]} {number(1.0 / g)}")
    if sel is not None:
        params = _params(sel.spice_params())
        out += [f"XS{k // cols}_{k % cols} {names[a]} {names[b]} {sel.spice_subckt} params: {params}"
                for k, (a, b) in enumerate(zip(circuit.sel_a, circuit.sel_b)) if not circuit.dead[a]]
    if tr is not None:
        gates = {line: circuit.fixed[i] for i, (kind, line) in enumerate(zip(circuit.fixed_kind, circuit.fixed_line))
                 if kind == 2}
        out += [f"M{k // cols}_{k % cols} {names[d]} {names[gates[row]]} {names[s]} {names[s]} "
                f"{tr.spice_model}_cs w={number(tr.w)} l={number(tr.l)}"
                for k, (d, s, row) in enumerate(zip(circuit.tr_d, circuit.tr_s, circuit.tr_row)) if not circuit.dead[d]]
    out += [analysis, ".end", ""]
    return "\n".join(out)


def relative_includes(deck: str, deck_dir: str | Path) -> str:
    """The deck with its .include paths relative to `deck_dir`, the folder the deck is saved in.

    ngspice resolves a relative .include against the folder of the deck file, so a saved deck
    keeps working when the repository moves; render() writes absolute paths because a deck
    fed to the shared library has no folder of its own.
    """
    base = Path(deck_dir).resolve()
    return INCLUDE_LINE.sub(lambda m: f'.include "{Path(os.path.relpath(m["path"], base)).as_posix()}"', deck)
