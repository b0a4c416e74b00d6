"""Crossbar array descriptions: immutable, validated values in SI units."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from circuitsim.devices.access import NmosAccess
from circuitsim.devices.selectors import CurrentLimiter, Diode, SinhSelector
from circuitsim.validate import array_size, broadcast_quantity, broadcast_resistance, check_physical, finite_array

CAPACITANCES = ("c_row", "c_col", "c_cell", "c_couple")  # [F]; all 0 = a DC-only design, as before they existed

SELECTOR_TYPES = (SinhSelector, Diode, CurrentLimiter)  # DC selectors: current(v) -> (i, dI/dV), a subckt


@dataclass(frozen=True, eq=False)
class Crossbar:
    """A rows×cols crossbar. Wiring follows DESIGN.md (the badcrossbar convention).

    conductance: (rows, cols) cell conductances [S], finite and >= 0 (0 = open cell).
    r_row: word-line segment resistance [Ω], scalar or (rows, cols); segment [i, 0] joins
        the driver of row i to its first cell, segment [i, j] joins cells j-1 and j.
    r_col: bit-line segment resistance [Ω], scalar or (rows, cols); segment [i, j] joins
        cells i and i+1 of column j, segment [rows-1, j] joins the bottom cell to the sense node.
    r_driver: driver output resistance [Ω], scalar or (rows,).
    r_sense: sense-amplifier input resistance [Ω], scalar or (cols,).
    selector: optional two-terminal selector in series with every cell (1S1R).
    transistor: optional NMOS access transistor in series with every cell (1T1R); its
        gate is driven per row.
    c_row: word-line capacitance to ground [F] of segment [i, j], scalar or (rows, cols),
        lumped at the row-wire node of cell (i, j) (the segment's cell end: an RC ladder).
    c_col: bit-line capacitance to ground [F] of segment [i, j], scalar or (rows, cols),
        lumped at the column-wire node of cell (i, j).
    c_cell: capacitance across each cell [F], scalar or (rows, cols), between its row-wire and
        column-wire nodes (the whole cell: device and selector or transistor).
    c_couple: coupling capacitance between neighbouring lines [F], scalar or (rows, cols):
        entry [i, j] joins the row-wire nodes of cells (i, j) and (i+1, j), and the
        column-wire nodes of cells (i, j) and (i, j+1) (the last row / column has no neighbour).
    Capacitances matter only in transients (circuitsim.transient); a DC solve ignores them.
    """

    conductance: Any
    r_row: Any = 0.0
    r_col: Any = 0.0
    r_driver: Any = 0.0
    r_sense: Any = 0.0
    selector: SinhSelector | Diode | CurrentLimiter | None = None
    transistor: NmosAccess | None = None
    c_row: Any = 0.0
    c_col: Any = 0.0
    c_cell: Any = 0.0
    c_couple: Any = 0.0

    def __post_init__(self):
        shape = getattr(self.conductance, "shape", ())  # an array's, a nested list is in memory anyway
        if len(shape) == 2 and 0 not in shape:
            array_size(*shape)  # before copying it: an absurd size is refused, not allocated
        g = finite_array("conductance", self.conductance, nonnegative=True)
        if g.ndim != 2 or 0 in g.shape:
            raise ValueError(f"conductance must be a non-empty 2-D (rows, cols) array, got shape {g.shape}")
        rows, cols = array_size(*g.shape)
        check_physical("conductance", g, "S")
        set_ = object.__setattr__
        set_(self, "conductance", g)
        set_(self, "r_row", broadcast_resistance("r_row", self.r_row, (rows, cols)))
        set_(self, "r_col", broadcast_resistance("r_col", self.r_col, (rows, cols)))
        set_(self, "r_driver", broadcast_resistance("r_driver", self.r_driver, (rows,)))
        set_(self, "r_sense", broadcast_resistance("r_sense", self.r_sense, (cols,)))
        for name in CAPACITANCES:
            set_(self, name, broadcast_quantity(name, getattr(self, name), (rows, cols), "F"))
        if self.selector is not None and not isinstance(self.selector, SELECTOR_TYPES):
            raise TypeError(f"selector must be one of {[t.__name__ for t in SELECTOR_TYPES]}, "
                            f"got {type(self.selector).__name__}")
        if self.transistor is not None and not isinstance(self.transistor, NmosAccess):
            raise TypeError(f"transistor must be an NmosAccess, got {type(self.transistor).__name__}")
        if self.selector is not None and self.transistor is not None:
            raise ValueError("a cell takes either a selector (1S1R) or an access transistor (1T1R), not both")

    @property
    def shape(self) -> tuple[int, int]:
        return self.conductance.shape

    @property
    def has_capacitance(self) -> bool:
        """Whether any capacitance is non-zero (otherwise the design is what it was before c_*)."""
        return any(getattr(self, name).any() for name in CAPACITANCES)

    @property
    def cell_type(self) -> str:
        """'1R', '1S1R' or '1T1R'."""
        return "1S1R" if self.selector is not None else "1T1R" if self.transistor is not None else "1R"

    def replace(self, **changes) -> Crossbar:
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Crossbar(**values)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for provenance and storage: arrays stay arrays, devices become dicts; the
        capacitances only when one is non-zero (stored keys of DC designs stay as they were)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                               if f.name not in CAPACITANCES or self.has_capacitance}
        for name in ("selector", "transistor"):
            device = out[name]
            out[name] = None if device is None else {"type": type(device).__name__, **vars(device)}
        return out


def row_path_ohm(xb: Crossbar) -> np.ndarray:
    """Row-wire segment resistances [Ω] (rows, cols) with the driver resistance in segment 0: the
    resistance before each cell along its row, as the cell-current equations see it."""
    r = xb.r_row.copy()
    r[:, 0] += xb.r_driver
    return r


def col_path_ohm(xb: Crossbar) -> np.ndarray:
    """Column-wire segment resistances [Ω] (rows, cols) with the sense resistance in the bottom one."""
    r = xb.r_col.copy()
    r[-1, :] += xb.r_sense
    return r


def own_path_ohm(xb: Crossbar) -> np.ndarray:
    """Each cell's own wire path [Ω] (rows, cols): along its row to the driver plus along its column
    to the sense; the diagonal of the wire-drop operator W of the cell-current equations."""
    return np.cumsum(row_path_ohm(xb), axis=1) + np.cumsum(col_path_ohm(xb)[::-1], axis=0)[::-1]
