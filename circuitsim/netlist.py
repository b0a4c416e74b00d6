"""Circuit -> SPICE deck text. Only validated names and finite numbers reach the deck."""
from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from circuitsim import __version__
from circuitsim.circuit import Circuit, grid_names
from circuitsim.devices.library import lib_path

SOURCE_PREFIX = ("Vin", "Vout", "Vg")  # by Circuit.fixed_kind: row driver, column sense, gate
# ngspice's defaults (reltol 1e-3, vntol 1e-6 V, abstol 1e-12 A) let a nonlinear .op stop 2e-7
# (relative) from the exact answer when wires of 1e4-1e5 ohm leave sub-microampere currents;
# with these it lands within 1e-10 of it at the same cost (Newton converges quadratically).
OP_TOLERANCES = "reltol=1e-6 vntol=1e-9 abstol=1e-15"
DC_ANALYSIS = re.compile(r"^\.(op|dc)\b", re.MULTILINE | re.IGNORECASE)  # decks that get OP_TOLERANCES
INCLUDE_LINE = re.compile(r'^\.include "(?P<path>[^"\n]+)"$', re.MULTILINE)


def source_names(circuit: Circuit) -> list[str]:
    """SPICE names of the voltage sources, in the order of circuit.fixed."""
    return [f"{SOURCE_PREFIX[k]}{line}" for k, line in zip(circuit.fixed_kind, circuit.fixed_line)]


def number(x: float) -> str:
    if not np.isfinite(x):  # validated upstream; a last guard, since a deck is code
        raise ValueError(f"non-finite number {x!r} cannot go into a SPICE deck")
    return repr(float(x))


def numbers(values) -> list[str]:
    """number() of each value, checked and formatted in bulk (a large deck has ~1e5 of them;
    uniform wires repeat one value, which is formatted once)."""
    values = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(values).all():
        raise ValueError("non-finite number cannot go into a SPICE deck")
    unique, index = np.unique(values, return_inverse=True)
    if unique.size > values.size // 4:
        return list(map(repr, values.tolist()))
    return np.array(list(map(repr, unique.tolist())), dtype=object)[index].tolist()


def lines(*fields) -> list[str]:
    """One deck line per element: its fields joined by spaces, the whole block at once (a large
    deck has ~1e5 lines). A field is a sequence with one entry per element (names, node names,
    numbers()) or one str that every line shares (at least one field is a sequence)."""
    columns = [itertools.repeat(f) if isinstance(f, str) else f.tolist() if isinstance(f, np.ndarray) else f
               for f in fields]
    return list(map(" ".join, zip(*columns)))


def _cell_names(prefix: str, rows: int, cols: int) -> np.ndarray:
    """<prefix><i>_<j> of every cell, row-major."""
    return grid_names(prefix, "_", range(rows), range(cols))


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
    names = circuit.node_name_array  # indexed by node arrays in bulk
    sel, tr = xb.selector, xb.transistor
    libs = sorted({d.spice_lib for d in (sel, tr, *(cells or ())) if d is not None})
    out = [
        f"* circuitsim {__version__}: {rows}x{cols} crossbar, {xb.cell_type} cells",
        "* rows are driven at the left end (node in<i>), columns are sensed at the bottom (node out<j>)",
        "* nodes: r<i>c<j> row wire at cell (i,j), b<i>c<j> column wire, m<i>c<j> inside the cell",
        "* zero-ohm segments are merged into one node; floating lines have no source",
        ".options klu" + (f" {OP_TOLERANCES}" if DC_ANALYSIS.search(analysis) else ""),
    ]
    out += [f'.include "{lib_path(lib)}"' for lib in libs]
    if tr is not None:
        out.append(tr.spice_model_line())
    out.append("* sources: drivers (Vin), sense nodes (Vout), gates (Vg)")
    values = ("DC", numbers(fixed_volts)) if waveforms is None else (waveforms,)
    out += lines(source_names(circuit), names[circuit.fixed], "0", *values)
    out.append("* wire segments: Rrow<i>_<j> feeds cell (i,j) of row i; Rcol<i>_<j> leaves cell (i,j) downwards")
    out += lines(circuit.res_names, names[circuit.res_a], names[circuit.res_b], numbers(circuit.res_ohm))
    out.append("* cells: Rcell = 1/conductance, or XC = device subckt (open cells are left out)")
    present = np.flatnonzero(circuit.cell_g > 0)
    ends = names[circuit.cell_hi[present]], names[circuit.cell_lo[present]]
    if cells is not None:
        devices = [cells[k] for k in present.tolist()]
        out += lines(_cell_names("XC", rows, cols)[present], *ends, [d.spice_subckt for d in devices], "params:",
                     [_params(d.spice_params()) for d in devices])
    else:
        out += lines(_cell_names("Rcell", rows, cols)[present], *ends, numbers(1.0 / circuit.cell_g[present]))
    if sel is not None:
        live = ~circuit.dead[circuit.sel_a]  # a cell cut off from every source is left out
        out += lines(_cell_names("XS", rows, cols)[live], names[circuit.sel_a[live]], names[circuit.sel_b[live]],
                     sel.spice_subckt, "params:", _params(sel.spice_params()))
    if tr is not None:
        gate = np.zeros(rows, dtype=int)  # the gate node of each row
        is_gate = circuit.fixed_kind == 2
        gate[circuit.fixed_line[is_gate]] = circuit.fixed[is_gate]
        live = ~circuit.dead[circuit.tr_d]
        source = names[circuit.tr_s[live]]
        out += lines(_cell_names("M", rows, cols)[live], names[circuit.tr_d[live]], names[gate[circuit.tr_row[live]]],
                     source, source, f"{tr.spice_model}_cs w={number(tr.w)} l={number(tr.l)}")
    out += capacitor_lines(circuit)
    out += [analysis, ".end", ""]
    return "\n".join(out)


def capacitor_lines(circuit: Circuit) -> list[str]:
    """The deck lines of the circuit's capacitors (none, not even a comment, for a design without
    capacitance: its deck stays what it was)."""
    if not len(circuit.cap_a):
        return []
    names = np.append(circuit.node_name_array, "0")  # GROUND (-1) is the last: node 0
    return ["* capacitors: Crow/Ccol to ground, Ccell across a cell, Ckr/Ckc coupling neighbouring rows/columns",
            *lines(circuit.cap_names, names[circuit.cap_a], names[circuit.cap_b], numbers(circuit.cap_farad))]


def relative_includes(deck: str, deck_dir: str | Path) -> str:
    """The deck with its .include paths relative to `deck_dir`, the folder the deck is saved in.

    ngspice resolves a relative .include against the folder of the deck file, so a saved deck
    keeps working when the repository moves; render() writes absolute paths because a deck
    fed to the shared library has no folder of its own.
    """
    base = Path(deck_dir).resolve()
    return INCLUDE_LINE.sub(lambda m: f'.include "{Path(os.path.relpath(m["path"], base)).as_posix()}"', deck)


def standalone(circuit: Circuit, fixed_volts: np.ndarray) -> str:
    """A deck for the ngspice program on its own: the models inlined (it runs from any folder),
    and `ngspice -b deck.cir` prints the column currents [A] (positive into the sense nodes),
    one table, instead of every node. ngspice prints only the results of a sweep, so the
    analysis is a one-point .dc of the first sense source at its own value: the same DC
    solution as the engine's .op. `ngspice -b -r out.raw` keeps only those currents too."""
    senses = [(name, volts) for name, kind, volts in zip(source_names(circuit), circuit.fixed_kind, fixed_volts)
              if kind == 1]
    if not senses:  # every column floating: no column current to print
        return inline_includes(render(circuit, fixed_volts))
    first, volts = senses[0][0], number(senses[0][1])
    currents = " ".join(f"i({name})" for name, _ in senses)
    analysis = (f"* ngspice -b prints the column currents i(Vout<j>) [A] (7 digits; -r out.raw keeps all 16)\n"
                f"* in one table; a one-point .dc is the .op\n.width out={16 * (len(senses) + 2)}\n"
                f".save {currents}\n.dc {first} {volts} {volts} 1\n.print dc {currents}")
    return inline_includes(render(circuit, fixed_volts, analysis))


def inline_includes(deck: str) -> str:
    """The deck with each .include line replaced by the file it names."""
    def body(match) -> str:
        path = Path(match["path"])
        return f"* ---- {path.name}, inlined ----\n{path.read_text().rstrip()}\n* ---- end of {path.name} ----"

    return INCLUDE_LINE.sub(body, deck)
