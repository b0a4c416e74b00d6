"""1S1R arrays solved for their cell currents (solver/currents.py): against ngspice, against the
node-voltage Newton-Krylov on the same circuits, and the hand-over of what this path cannot solve."""
import numpy as np
import pytest
from conftest import random_crossbar
from test_engines import assert_close

import circuitsim
from circuitsim.circuit import make_drive
from circuitsim.devices import Diode, SinhSelector
from circuitsim.solver import currents, dc


def _awkward_1s1r(rng, rows, cols, r_wire=None):
    """Per-segment wires, driver and sense resistances, open cells, and zero-ohm segments (merged
    nodes), one of them joining a row's first cell to its driver."""
    wires = {} if r_wire is None else {"r_row": r_wire, "r_col": r_wire}
    xb = random_crossbar(rng, rows, cols, "1S1R", **wires)
    g = xb.conductance.copy()
    g[rng.random(g.shape) < 0.15] = 0.0
    r_row, r_col, r_driver = (np.array(np.broadcast_to(x, shape), dtype=float) for x, shape in
                              ((xb.r_row, (rows, cols)), (xb.r_col, (rows, cols)), (xb.r_driver, (rows,))))
    r_row[1, 2] = r_col[2, 1] = 0.0
    r_row[0, 0] = r_driver[0] = 0.0
    return circuitsim.Crossbar(conductance=g, r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=xb.r_sense,
                               selector=xb.selector)


def _drives(rng, rows, cols, batch):
    """Rows from below 0 V to past the selector's knee, columns held off 0 V: cells in both directions."""
    return rng.uniform(-0.6, 1.2, (batch, rows)), rng.uniform(-0.2, 0.3, (batch, cols))


def test_cell_currents_agree_with_ngspice(rng):
    xb = _awkward_1s1r(rng, 7, 9)
    v_rows, v_cols = _drives(rng, 7, 9, 3)
    drive = make_drive(xb, v_rows, v_cols)
    assert currents.applies(drive.circuit)
    _, solved = currents.CurrentSystem(drive.circuit).solve(drive.fixed_volts, dc.PORT_RTOL, 40, 0.5)
    assert solved.all()
    ours = circuitsim.simulate(xb, v_rows, v_cols, engine="numpy")
    theirs = circuitsim.simulate(xb, v_rows, v_cols, engine="spice")
    for name in ("column_currents", "row_currents", "cell_currents", "node_voltages", "power"):
        assert_close(getattr(ours, name), getattr(theirs, name), 1e-6, f"1S1R {name}, cell currents vs ngspice")


@pytest.mark.parametrize("rows, cols, r_wire", [(16, 12, None), (12, 16, 300.0), (24, 24, 2.0)])
def test_cell_currents_agree_with_the_node_voltage_newton(rows, cols, r_wire, rng):
    """The same circuits by both paths, from wires of ohms to wires as resistive as the cells."""
    xb = _awkward_1s1r(rng, rows, cols, r_wire)
    drive = make_drive(xb, *_drives(rng, rows, cols, 5))
    system = currents.CurrentSystem(drive.circuit)
    _, solved = system.solve(drive.fixed_volts, dc.PORT_RTOL, 40, 0.5)
    assert solved.all(), f"the cell-current path handed back {np.flatnonzero(~solved)}"
    fast = dc.operating_point(drive.circuit, drive.fixed_volts)
    general = dc.operating_point(drive.circuit, drive.fixed_volts, dc.NewtonOptions(by_currents=False))
    assert_close(fast.source_currents, general.source_currents, 1e-9, "source currents, cell currents vs node voltages")
    assert_close(fast.cell_currents, general.cell_currents, 1e-9, "cell currents, cell currents vs node voltages")
    assert_close(fast.node_volts, general.node_volts, 1e-9, "node voltages, cell currents vs node voltages")


def test_vectors_the_cell_current_path_cannot_finish_go_to_the_general_newton(rng):
    """Two Newton iterations are too few for this path: every vector is handed back and solved by the
    node-voltage Newton (two iterations, then each vector's own), to the same answer."""
    xb = _awkward_1s1r(rng, 10, 8)
    drive = make_drive(xb, *_drives(rng, 10, 8, 4))
    _, solved = currents.CurrentSystem(drive.circuit).solve(drive.fixed_volts, dc.PORT_RTOL, 2, 0.5)
    assert not solved.any()
    handed_back = dc.operating_point(drive.circuit, drive.fixed_volts, dc.NewtonOptions(shared_iter=2))
    default = dc.operating_point(drive.circuit, drive.fixed_volts)
    assert_close(handed_back.source_currents, default.source_currents, 1e-9, "source currents, handed back vs not")


def test_the_cell_current_path_takes_only_the_circuits_it_solves(rng):
    v = np.full(5, 0.5)
    assert currents.applies(make_drive(random_crossbar(rng, 5, 4, "1S1R"), v).circuit)
    floating = make_drive(random_crossbar(rng, 5, 4, "1S1R"), v, floating_cols=np.r_[False, True, False, False])
    others = [make_drive(random_crossbar(rng, 5, 4, kind), v) for kind in ("1R", "1T1R")]
    diode = make_drive(random_crossbar(rng, 5, 4, "1S1R", selector=Diode(bipolar=True)), v)
    assert not any(currents.applies(d.circuit) for d in (floating, *others, diode))
    assert SinhSelector().law()[0] == "sinh"
