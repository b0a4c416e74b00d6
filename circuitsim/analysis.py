"""Array-level figures a designer asks for: read schemes, read margin, write disturb, IR drop, energy;
and, re-exported from circuitsim.readout, the time-domain ones: read latency and read-pulse energy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.engines import simulate
from circuitsim.readout import ReadLatency as ReadLatency
from circuitsim.readout import ReadPulseEnergy as ReadPulseEnergy
from circuitsim.readout import adc_tolerance as adc_tolerance
from circuitsim.readout import read_latency as read_latency
from circuitsim.readout import read_pulse_energy as read_pulse_energy

SCHEMES = ("floating", "v/2", "v/3")


@dataclass(frozen=True)
class Bias:
    """Line voltages [V] and floating masks for accessing one selected cell."""

    v_rows: np.ndarray
    v_cols: np.ndarray
    floating_rows: np.ndarray
    floating_cols: np.ndarray

    def kwargs(self) -> dict:
        return {"v_cols": self.v_cols, "floating_rows": self.floating_rows, "floating_cols": self.floating_cols}


def bias(shape: tuple[int, int], row: int, col: int, v: float, scheme: str) -> Bias:
    """Selected row at v, selected column at 0 V; unselected lines floating ("floating"),
    at v/2 ("v/2"), or rows at v/3 and columns at 2v/3 ("v/3")."""
    rows, cols = shape
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"cell ({row}, {col}) is outside the {rows}x{cols} array")
    unsel_row, unsel_col = {"floating": (0.0, 0.0), "v/2": (v / 2, v / 2), "v/3": (v / 3, 2 * v / 3)}[scheme]
    v_rows, v_cols = np.full(rows, unsel_row), np.full(cols, unsel_col)
    v_rows[row], v_cols[col] = v, 0.0
    float_rows, float_cols = np.full(rows, scheme == "floating"), np.full(cols, scheme == "floating")
    float_rows[row] = float_cols[col] = False
    return Bias(v_rows, v_cols, float_rows, float_cols)


def half_selected(shape: tuple[int, int], row: int, col: int) -> np.ndarray:
    """Mask of the cells sharing the selected cell's row or column (the cell itself excluded)."""
    mask = np.zeros(shape, dtype=bool)
    mask[row, :] = mask[:, col] = True
    mask[row, col] = False
    return mask


def read_current(xb: Crossbar, row: int, col: int, v_read: float, scheme: str, engine: str = "numpy") -> float:
    """Current [A] into the selected column's sense node when reading cell (row, col)."""
    b = bias(xb.shape, row, col, v_read, scheme)
    return float(simulate(xb, b.v_rows, engine=engine, **b.kwargs()).column_currents[col])


@dataclass(frozen=True)
class ReadMargin:
    """Reading one cell at g_on and at g_off.

    i_on / i_off: current into the selected column's sense node with the cell ON / OFF [A];
    margin = (i_on − i_off)/i_on (≤ 0: ON and OFF cannot be told apart);
    sneak_current: i_off minus the OFF cell's own current at v_read, alone and without wires
    (the same cell: selector or transistor included) [A].
    """

    i_on: float
    i_off: float
    margin: float
    sneak_current: float


PATTERNS = ("worst", "design")


def read_margin(xb: Crossbar, g_on: float, g_off: float, *, cell: tuple[int, int] | None = None,
                v_read: float = 0.2, scheme: str = "v/2", pattern: str = "worst", engine: str = "numpy") -> ReadMargin:
    """Read margin of one cell of design xb: its wires, driver/sense resistances, selector or transistor.

    cell: (row, col) read, default the far corner (row 0, last column: farthest from driver and
    sense). The cell is read at g_on and at g_off [S]; the other cells keep xb's conductances
    (pattern="design") or take the worst case (pattern="worst": all g_off while reading ON, all
    g_on while reading OFF).
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; choose one of {PATTERNS}")
    row, col = (0, xb.shape[1] - 1) if cell is None else cell

    def current(selected_g, others_g):
        g = xb.conductance.copy() if pattern == "design" else np.full(xb.shape, others_g)
        g[row, col] = selected_g
        return read_current(xb.replace(conductance=g), row, col, v_read, scheme, engine)

    i_on, i_off = current(g_on, g_off), current(g_off, g_on)
    alone = Crossbar(conductance=[[g_off]], selector=xb.selector, transistor=xb.transistor)
    i_alone = float(simulate(alone, [v_read], engine=engine).column_currents[0])
    return ReadMargin(i_on, i_off, (i_on - i_off) / i_on, i_off - i_alone)


@dataclass(frozen=True)
class WriteDisturb:
    """Cell voltages [V] while writing one cell; half-selected cells share its row or column."""

    cell_voltages: np.ndarray
    selected_v: float
    half_selected_max_v: float
    unselected_max_v: float

    @property
    def disturb_ratio(self) -> float:
        """Largest half-selected |V| as a fraction of the selected cell's |V|."""
        return self.half_selected_max_v / abs(self.selected_v)


def write_disturb(xb: Crossbar, row: int, col: int, v_write: float, scheme: str = "v/2",
                  engine: str = "numpy") -> WriteDisturb:
    """Voltage across the selected, half-selected and unselected cells during a write."""
    b = bias(xb.shape, row, col, v_write, scheme)
    cell_v = simulate(xb, b.v_rows, engine=engine, **b.kwargs()).cell_voltages
    half = half_selected(xb.shape, row, col)
    rest = ~half
    rest[row, col] = False
    return WriteDisturb(cell_v, float(cell_v[row, col]), float(np.abs(cell_v[half]).max(initial=0.0)),
                        float(np.abs(cell_v[rest]).max(initial=0.0)))


@dataclass(frozen=True)
class IRDrop:
    """effective: voltage across each cell [V]; ideal: v_rows[i] − v_cols[j], in V;
    drop = ideal − effective [V]; relative = drop/ideal (0 where ideal is 0)."""

    effective: np.ndarray
    ideal: np.ndarray

    @property
    def drop(self) -> np.ndarray:
        return self.ideal - self.effective

    @property
    def relative(self) -> np.ndarray:
        return np.divide(self.drop, self.ideal, out=np.zeros_like(self.drop), where=self.ideal != 0)


def ir_drop_map(xb: Crossbar, v_rows, v_cols=None, engine: str = "numpy") -> IRDrop:
    """Effective voltage across every cell against the ideal (wire-free) one."""
    res = simulate(xb, v_rows, v_cols, engine=engine)
    v_c = np.zeros(xb.shape[1]) if v_cols is None else np.asarray(v_cols, dtype=float)
    ideal = np.asarray(v_rows, dtype=float)[..., :, None] - v_c[..., None, :]
    return IRDrop(res.cell_voltages, ideal)


@dataclass(frozen=True)
class ReadEnergy:
    """power: total power of the read [W]; array_energy: power × t_read [J];
    energy_per_mac: array_energy / (rows·cols) [J] (one MAC per cell)."""

    power: np.ndarray
    array_energy: np.ndarray
    energy_per_mac: np.ndarray


def read_energy(xb: Crossbar, v_rows, v_cols=None, *, floating_rows=None, floating_cols=None,
                t_read_s: float = 10e-9, engine: str = "numpy") -> ReadEnergy:
    """Energy of one analog matrix-vector read of duration t_read_s from the circuit's own power.

    The drive is simulate()'s: row voltages, sense-node voltages v_cols, floating lines."""
    if not t_read_s > 0:
        raise ValueError(f"t_read_s must be positive, got {t_read_s}")
    power = np.asarray(simulate(xb, v_rows, v_cols, engine=engine, floating_rows=floating_rows,
                                floating_cols=floating_cols).power)
    energy = power * t_read_s
    return ReadEnergy(power, energy, energy / xb.conductance.size)
