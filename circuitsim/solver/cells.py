"""The cells of a nonlinear array (device in series with a selector or an access transistor), each
reduced to one two-terminal branch: its inner node solved for given wire voltages (a monotone scalar
equation, bracketed Newton), giving the branch current and its derivatives for the array's Newton.

The solve runs cell by cell in one compiled loop (devices/laws.py, beside the device laws it
inlines): each cell iterates only as long as it needs, with no array temporaries."""
from __future__ import annotations

import numpy as np

from circuitsim.circuit import Circuit

CELL_ITER = 100  # bracketed Newton iterations for a cell's inner node, at most


def cell_law(circuit: Circuit) -> tuple[str, tuple[float, ...]]:
    """The law (devices/laws.py) of the selector or transistor of every cell, and its parameters."""
    xb = circuit.xb
    return (xb.selector if xb.selector is not None else xb.transistor).law()


def inner_current(circuit: Circuit, v_m, v_b, gate_v):
    """Current from the inner node to the column wire through the selector or transistor,
    with its derivatives with respect to v_m and v_b."""
    from circuitsim.devices import laws  # numba: imported on first use (see there)

    return laws.evaluate(cell_law(circuit), v_m, v_b, 0.0 if gate_v is None else gate_v)


def solve_cells(circuit: Circuit, v_r, v_b, gate_v, opts=None, v_m=None, tol_v=0.0):
    """Inner-node voltage and current of every cell for given wire voltages v_r, v_b (batch, cells)
    or (cells,), and the current's derivatives: v_m, i, di/dv_r, di/dv_b, each of that shape.

    Solves G·(v_r − v_m) = f(v_m, v_b) by Newton kept inside the bracket between v_b and
    v_r (the root is there because f is increasing in v_m and zero at v_m = v_b), bisecting
    where a Newton step leaves the bracket or does not halve the step before last (rtsafe,
    Numerical Recipes §9.4): past a steep selector's knee Newton alone crawls; v_m, if
    given, is the starting guess. A cell stops once its Newton step is below tol_v [V] (scalar or
    per vector, (batch, 1); never before rounding level): an outer Newton still far from its
    solution needs no more. opts: the solver's options (dc.NewtonOptions; its cell_iter, the most
    iterations, is read), None for CELL_ITER.
    """
    from circuitsim.devices import laws  # numba: imported on first use (see there)

    shape = np.shape(v_r)
    rows = (-1, len(circuit.cell_g))  # vectors, cells
    v_r = np.reshape(v_r, rows)
    # arrays whose cells run along the slow axis (column-major, as the solver's fancy indexing gives
    # them) are solved as they lie: no copies, and results in the same order
    cells_first = not v_r.flags.c_contiguous and v_r.flags.f_contiguous
    lying = [None if x is None else np.reshape(x, rows).T if cells_first else np.reshape(x, rows)
             for x in (v_r, v_b, gate_v, v_m)]
    v_r, v_b, gates, start = (None if x is None else laws.as_kernel_array(x) for x in lying)
    tol_vectors = laws.as_kernel_array(np.broadcast_to(tol_v, shape[:-1] + (1,))).reshape(-1)
    out = [np.empty(v_r.shape) for _ in range(4)]
    name, params = cell_law(circuit)
    laws.solve_in_series(laws.KINDS[name], laws.as_kernel_array(params), laws.as_kernel_array(circuit.cell_g),
                         v_r, v_b, v_b if gates is None else gates, v_r if start is None else start,
                         start is not None, tol_vectors, cells_first,
                         CELL_ITER if opts is None else opts.cell_iter, *out)
    return tuple((x.T if cells_first else x).reshape(shape) for x in out)


def predict_inner(v_m, di_dvr, di_dvb, g_ratio, dv_r, dv_b):
    """The inner nodes after the wire voltages move by dv_r, dv_b, to first order (each cell's own
    linearization; g_ratio = 1/cell_g, 0 for open cells): a guess on which solve_cells needs one or
    two iterations."""
    return v_m + (1.0 - di_dvr * g_ratio) * dv_r - di_dvb * g_ratio * dv_b
