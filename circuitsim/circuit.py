"""The crossbar as a flat circuit: nodes, resistors, selectors, transistors, fixed-voltage nodes.

Both engines start from this one description, so the SPICE deck and the numpy nodal
equations cannot describe different circuits. Zero-ohm segments are merged into one node
(SPICE and a nodal solver both dislike 0 Ω); floating lines lose their source.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from circuitsim.design import Crossbar
from circuitsim.validate import line_mask, voltages


@dataclass(frozen=True, eq=False)
class Circuit:
    """Flat circuit of a crossbar. Node indices refer to `node_names` (after merging).

    cell_hi / cell_lo: nodes of the cell's linear device (row side, inner side).
    row_node / col_node: (rows, cols) row-wire and column-wire node at each cell.
    fixed: nodes held by sources, in the order [rows drivers..., column senses..., gates...];
        fixed_kind / fixed_line tell which line each source belongs to.
    """

    xb: Crossbar
    node_ids: np.ndarray  # position of each node in the unmerged numbering of _names()
    res_a: np.ndarray
    res_b: np.ndarray
    res_ohm: np.ndarray
    res_ids: np.ndarray  # position of each resistor in the segment numbering of _segment_names()
    cell_hi: np.ndarray
    cell_lo: np.ndarray
    cell_g: np.ndarray
    sel_a: np.ndarray
    sel_b: np.ndarray
    tr_d: np.ndarray
    tr_s: np.ndarray
    tr_row: np.ndarray
    row_node: np.ndarray
    col_node: np.ndarray
    inner_node: np.ndarray | None
    fixed: np.ndarray
    fixed_kind: np.ndarray  # 0 row driver, 1 column sense, 2 gate
    fixed_line: np.ndarray
    floating_rows: np.ndarray
    floating_cols: np.ndarray
    dead: np.ndarray  # per node: no DC path to a source; its elements are left out, its voltage is undefined
    # capacitors (transients only): cap_b == GROUND for a capacitor to ground; cap_ids: position in
    # the numbering of _capacitor_names(); none for a design without capacitance
    cap_a: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    cap_b: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    cap_farad: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cap_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @cached_property
    def node_name_array(self) -> np.ndarray:
        """Netlist names of the nodes as an object array, for indexing by node arrays in bulk
        (built on demand: large arrays have many)."""
        return _names(*self.xb.shape, self.inner_node is not None)[self.node_ids]

    @cached_property
    def node_names(self) -> tuple[str, ...]:
        """Netlist names of the nodes."""
        return tuple(self.node_name_array.tolist())

    @cached_property
    def res_names(self) -> np.ndarray:
        """Netlist names of the wire resistors (object array)."""
        return _segment_names(*self.xb.shape, self.floating_rows, self.floating_cols)[self.res_ids]

    @cached_property
    def cap_names(self) -> np.ndarray:
        """Netlist names of the capacitors (object array)."""
        return _capacitor_names(*self.xb.shape)[self.cap_ids]

    def fixed_voltages(self, v_rows: np.ndarray, v_cols: np.ndarray, v_gates: np.ndarray) -> np.ndarray:
        """(batch, n_fixed) source voltages from per-line drive arrays of shape (batch, lines)."""
        lines = np.concatenate([v_rows, v_cols, v_gates], axis=1)     # one gather, not one per source
        first = np.cumsum([0, v_rows.shape[1], v_cols.shape[1]])
        return lines[:, first[self.fixed_kind] + self.fixed_line]


def grid_names(prefix: str, separator: str, rows, cols) -> np.ndarray:
    """Names <prefix><i><separator><j> for i in rows, j in cols, row-major, as a flat object
    array built in bulk (one string per row and per column, then one concatenation per name)."""
    heads = np.array([f"{prefix}{i}{separator}" for i in rows], dtype=object)
    tails = np.array([str(j) for j in cols], dtype=object)
    return np.add.outer(heads, tails).ravel()


def _names(rows: int, cols: int, inner: bool) -> np.ndarray:
    """Node names in the unmerged numbering of build_circuit."""
    lines = [f"in{i}" for i in range(rows)] + [f"out{j}" for j in range(cols)] + [f"g{i}" for i in range(rows)]
    return np.concatenate([grid_names(prefix, "c", range(rows), range(cols)) for prefix in ("rbm" if inner else "rb")]
                          + [np.array(lines, dtype=object)])


def _segment_names(rows: int, cols: int, floating_rows: np.ndarray, floating_cols: np.ndarray) -> np.ndarray:
    """Wire segment names in the order build_circuit lists the segments."""
    return np.concatenate([grid_names("Rrow", "_", range(rows), range(1, cols)),
                           grid_names("Rcol", "_", range(rows - 1), range(cols)),
                           grid_names("Rrow", "_", np.flatnonzero(~floating_rows), [0]),
                           grid_names("Rcol", "_", [rows - 1], np.flatnonzero(~floating_cols))])


GROUND = -1  # the reference node (SPICE's 0) in cap_b


def _capacitor_names(rows: int, cols: int) -> np.ndarray:
    """Capacitor names in the order _capacitors lists them: to ground on rows and columns, across
    cells, coupling row i to row i+1 (Ckr) and column j to column j+1 (Ckc)."""
    every = (range(rows), range(cols))
    return np.concatenate([grid_names("Crow", "_", *every), grid_names("Ccol", "_", *every),
                           grid_names("Ccell", "_", *every), grid_names("Ckr", "_", range(rows - 1), range(cols)),
                           grid_names("Ckc", "_", range(rows), range(cols - 1))])


def _capacitors(xb: Crossbar, r_node: np.ndarray, b_node: np.ndarray) -> tuple[np.ndarray, ...]:
    """(a, b, farad) of every capacitor position in the unmerged numbering (b = GROUND to ground)."""
    ground = np.full(r_node.size, GROUND)
    a = [r_node.ravel(), b_node.ravel(), r_node.ravel(), r_node[:-1, :].ravel(), b_node[:, :-1].ravel()]
    b = [ground, ground, b_node.ravel(), r_node[1:, :].ravel(), b_node[:, 1:].ravel()]
    farad = [xb.c_row.ravel(), xb.c_col.ravel(), xb.c_cell.ravel(), xb.c_couple[:-1, :].ravel(),
             xb.c_couple[:, :-1].ravel()]
    return np.concatenate(a), np.concatenate(b), np.concatenate(farad)


def build_circuit(xb: Crossbar, floating_rows: np.ndarray, floating_cols: np.ndarray) -> Circuit:
    """Flatten a crossbar with the given floating lines into a Circuit."""
    rows, cols = xb.shape
    n = rows * cols
    grid = np.arange(n).reshape(rows, cols)
    inner = xb.selector is not None or xb.transistor is not None
    r_node, b_node = grid, n + grid
    base = 3 * n if inner else 2 * n
    m_node = 2 * n + grid if inner else None
    in_node = base + np.arange(rows)
    out_node = base + rows + np.arange(cols)
    g_node = base + rows + cols + np.arange(rows)

    # wire segments (driver/sense resistance is in series with the first/last segment)
    a = [r_node[:, :-1].ravel(), b_node[:-1, :].ravel()]
    b = [r_node[:, 1:].ravel(), b_node[1:, :].ravel()]
    ohm = [xb.r_row[:, 1:].ravel(), xb.r_col[:-1, :].ravel()]
    driven, sensed = ~floating_rows, ~floating_cols
    a += [in_node[driven], b_node[-1, sensed]]
    b += [r_node[driven, 0], out_node[sensed]]
    ohm += [(xb.r_driver + xb.r_row[:, 0])[driven], (xb.r_col[-1, :] + xb.r_sense)[sensed]]
    a, b, ohm = np.concatenate(a), np.concatenate(b), np.concatenate(ohm)
    # merge nodes joined by 0 Ω; a fixed node (source) represents its group
    total = base + 2 * rows + cols
    zero = ohm == 0
    graph = coo_matrix((np.ones(zero.sum()), (a[zero], b[zero])), shape=(total, total))
    _, label = connected_components(graph, directed=False)
    fixed_all = np.concatenate([in_node[driven], out_node[sensed],
                                g_node if xb.transistor is not None else []]).astype(int)
    if np.bincount(label[fixed_all]).max(initial=0) > 1:
        raise ValueError("two driven lines are shorted by zero-resistance wires")
    is_fixed = np.zeros(total, dtype=bool)
    is_fixed[fixed_all] = True
    order = np.lexsort((np.arange(total), ~is_fixed, label))  # per group: fixed node first
    first = order[np.r_[True, label[order][1:] != label[order][:-1]]]
    rep_of_label = np.empty(label.max() + 1, dtype=int)
    rep_of_label[label[first]] = first
    rep = rep_of_label[label]

    in_use = np.zeros(total, dtype=bool)
    for nodes in (r_node, b_node, m_node if inner else [], fixed_all):
        in_use[rep[np.asarray(nodes, dtype=int).ravel()]] = True
    used = np.flatnonzero(in_use)
    new_index = np.full(total, -1)
    new_index[used] = np.arange(len(used))

    def node(idx):
        return new_index[rep[np.asarray(idx, dtype=int)]]

    g = xb.conductance.ravel()
    hi = node(r_node.ravel())
    lo = node(m_node.ravel() if inner else b_node.ravel())
    empty = np.array([], dtype=int)
    sel_a, sel_b = (node(m_node.ravel()), node(b_node.ravel())) if xb.selector is not None else (empty, empty)
    tr_d, tr_s = (node(m_node.ravel()), node(b_node.ravel())) if xb.transistor is not None else (empty, empty)
    dead = _without_dc_path(len(used), [(node(a[~zero]), node(b[~zero])), (hi[g > 0], lo[g > 0]),
                                        (sel_a, sel_b), (tr_d, tr_s)], node(fixed_all))
    keep = ~zero
    keep[keep] = ~dead[node(a[keep])]
    has_cell = (g > 0) & ~dead[hi]
    fixed_kind = np.concatenate([np.zeros(driven.sum(), int), np.ones(sensed.sum(), int),
                                 np.full(rows if xb.transistor is not None else 0, 2)])
    fixed_line = np.concatenate([np.flatnonzero(driven), np.flatnonzero(sensed),
                                 np.arange(rows) if xb.transistor is not None else np.array([], int)])
    cells = np.arange(n)
    caps = {}
    if xb.has_capacitance:
        c_a, c_b, c_f = _capacitors(xb, r_node, b_node)
        c_a, c_b = node(c_a), np.where(c_b == GROUND, GROUND, node(np.maximum(c_b, 0)))
        # left out: zero capacitance, both ends one node (merged), an end with no DC path
        on = (c_f > 0) & (c_a != c_b) & ~dead[c_a] & ((c_b == GROUND) | ~dead[np.maximum(c_b, 0)])
        caps = {"cap_a": c_a[on], "cap_b": c_b[on], "cap_farad": c_f[on], "cap_ids": np.flatnonzero(on)}
    return Circuit(
        xb=xb,
        node_ids=used,
        res_a=node(a[keep]), res_b=node(b[keep]), res_ohm=ohm[keep],
        res_ids=np.flatnonzero(keep),
        cell_hi=hi, cell_lo=lo, cell_g=np.where(has_cell, g, 0.0),
        sel_a=sel_a, sel_b=sel_b, tr_d=tr_d, tr_s=tr_s,
        tr_row=cells // cols if xb.transistor is not None else empty,
        row_node=node(r_node), col_node=node(b_node), inner_node=node(m_node) if inner else None,
        fixed=node(fixed_all), fixed_kind=fixed_kind, fixed_line=fixed_line,
        floating_rows=floating_rows, floating_cols=floating_cols, dead=dead, **caps,
    )


def _without_dc_path(n_nodes: int, branches: list[tuple[np.ndarray, np.ndarray]], fixed: np.ndarray) -> np.ndarray:
    """Mask of the nodes with no conducting path to any source (e.g. a floating line whose cells
    are all open): no current flows there and their voltages are undefined."""
    a = np.concatenate([x for x, _ in branches]).astype(int)
    b = np.concatenate([y for _, y in branches]).astype(int)
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n_nodes, n_nodes)), directed=False)
    return ~np.isin(label, label[fixed])


CACHED_DESIGNS = 4  # circuits kept: a sweep or a training loop reuses one or two designs
CACHED_BYTES = 2**30  # and at most this much of their arrays, apart from the newest one
_cache: OrderedDict[tuple, Circuit] = OrderedDict()
_cache_lock = threading.Lock()


def cached_circuit(xb: Crossbar, floating_rows: np.ndarray, floating_cols: np.ndarray) -> Circuit:
    """build_circuit, reused for the same Crossbar object and floating lines (a 1024² build costs
    ~1 s). Crossbar compares by identity and its arrays are read-only, so the object is the key;
    the cached Circuit refers to it, which keeps its id from being reused while the entry lives.
    The Circuit's arrays are made read-only because every caller shares them."""
    key = (id(xb), floating_rows.tobytes(), floating_cols.tobytes())
    with _cache_lock:
        circuit = _cache.get(key)
        if circuit is not None and circuit.xb is xb:
            _cache.move_to_end(key)
            return circuit
    circuit = build_circuit(xb, floating_rows, floating_cols)
    for f in fields(circuit):
        value = getattr(circuit, f.name)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    with _cache_lock:
        _cache[key] = circuit
        while len(_cache) > 1 and (len(_cache) > CACHED_DESIGNS
                                   or sum(map(circuit_bytes, _cache.values())) > CACHED_BYTES):
            _cache.popitem(last=False)
    return circuit


def circuit_bytes(circuit: Circuit) -> int:
    """Memory held by a circuit's arrays (its design's not counted)."""
    return sum(getattr(circuit, f.name).nbytes for f in fields(circuit)
               if isinstance(getattr(circuit, f.name), np.ndarray))


def clear_circuit_cache() -> None:
    """Forget the cached circuits (frees their memory; the next call on each design rebuilds)."""
    with _cache_lock:
        _cache.clear()


@dataclass(frozen=True, eq=False)
class Drive:
    """A validated drive of one crossbar: its circuit and (batch, n_fixed) source voltages."""

    circuit: Circuit
    fixed_volts: np.ndarray
    single: bool


def _batched(name: str, value, length: int, batch: int, default: float) -> np.ndarray:
    if value is None:
        return np.full((batch, length), default)
    arr, _ = voltages(name, value, length)
    if arr.shape[0] not in (1, batch):
        raise ValueError(f"{name} has batch size {arr.shape[0]}, v_rows has {batch}")
    return np.broadcast_to(arr, (batch, length))


def make_drive(xb: Crossbar, v_rows, v_cols=None, v_gates=None, floating_rows=None, floating_cols=None) -> Drive:
    """Validate the drive of `xb` and flatten it into a circuit with source voltages."""
    if not isinstance(xb, Crossbar):
        raise TypeError(f"expected a circuitsim.Crossbar, got {type(xb).__name__}")
    rows, cols = xb.shape
    v_r, single = voltages("v_rows", v_rows, rows)
    batch = v_r.shape[0]
    v_c = _batched("v_cols", v_cols, cols, batch, 0.0)
    if v_gates is not None and xb.transistor is None:
        raise ValueError("v_gates applies only to 1T1R arrays (Crossbar(transistor=...))")
    v_g = _batched("v_gates", v_gates, rows, batch, xb.transistor.v_gate_on if xb.transistor else 0.0)
    fr, fc = line_mask("floating_rows", floating_rows, rows), line_mask("floating_cols", floating_cols, cols)
    if fr.all():
        raise ValueError("at least one row must be driven")
    circuit = cached_circuit(xb, fr, fc)
    return Drive(circuit, circuit.fixed_voltages(v_r, v_c, v_g), single)
