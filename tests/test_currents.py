"""1S1R (sinh selector) and 1T1R arrays solved for their cell currents (solver/currents.py): against
ngspice, against the node-voltage Newton-Krylov on the same circuits, and the hand-over of what this
path cannot solve."""
import numpy as np
import pytest
from conftest import random_crossbar
from test_engines import assert_close

import circuitsim
from circuitsim.circuit import make_drive
from circuitsim.devices import Diode, SinhSelector
from circuitsim.solver import currents, dc

KINDS = ("1S1R", "1T1R")


def _awkward(rng, rows, cols, kind, r_wire=None):
    """Per-segment wires, driver and sense resistances, open cells, and zero-ohm segments (merged
    nodes), one of them joining a row's first cell to its driver."""
    wires = {} if r_wire is None else {"r_row": r_wire, "r_col": r_wire}
    xb = random_crossbar(rng, rows, cols, kind, **wires)
    g = xb.conductance.copy()
    g[rng.random(g.shape) < 0.15] = 0.0
    r_row, r_col, r_driver = (np.array(np.broadcast_to(x, shape), dtype=float) for x, shape in
                              ((xb.r_row, (rows, cols)), (xb.r_col, (rows, cols)), (xb.r_driver, (rows,))))
    r_row[1, 2] = r_col[2, 1] = 0.0
    r_row[0, 0] = r_driver[0] = 0.0
    return circuitsim.Crossbar(conductance=g, r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=xb.r_sense,
                               selector=xb.selector, transistor=xb.transistor)


def _drives(rng, xb, batch):
    """Rows from below 0 V to past a selector's knee, columns held off 0 V: cells in both directions;
    1T1R: some rows' gates off, the others at their on voltage or above."""
    rows, cols = xb.shape
    drive = {"v_rows": rng.uniform(-0.6, 1.2, (batch, rows)), "v_cols": rng.uniform(-0.2, 0.3, (batch, cols))}
    if xb.transistor is not None:
        on = xb.transistor.v_gate_on
        drive["v_gates"] = np.where(rng.random((batch, rows)) < 0.2, 0.0, rng.uniform(on, on + 0.5, (batch, rows)))
    return drive


def _solve(drive, newton_iter=40):
    """The cell-current path alone on a drive: node voltages and which vectors it solved."""
    circuit, fixed = drive.circuit, drive.fixed_volts
    return currents.system_for(circuit).solve(fixed, dc.gate_voltages(circuit, fixed),
                                              dc.NewtonOptions(shared_iter=newton_iter), dc.PORT_RTOL)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_currents_agree_with_ngspice(kind, rng):
    xb = _awkward(rng, 7, 9, kind)
    drive = _drives(rng, xb, 3)
    _, solved = _solve(make_drive(xb, **drive))
    assert solved.all()
    ours = circuitsim.simulate(xb, engine="numpy", **drive)
    theirs = circuitsim.simulate(xb, engine="spice", **drive)
    for name in ("column_currents", "row_currents", "cell_currents", "node_voltages", "power"):
        assert_close(getattr(ours, name), getattr(theirs, name), 1e-6, f"{kind} {name}, cell currents vs ngspice")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rows, cols, r_wire", [(16, 12, None), (12, 16, 300.0), (24, 24, 2.0)])
def test_cell_currents_agree_with_the_node_voltage_newton(kind, rows, cols, r_wire, rng):
    """The same circuits by both paths, from wires of ohms to wires as resistive as the cells."""
    xb = _awkward(rng, rows, cols, kind, r_wire)
    drive = make_drive(xb, **_drives(rng, xb, 5))
    _, solved = _solve(drive)
    assert solved.all(), f"the cell-current path handed back {np.flatnonzero(~solved)}"
    fast = dc.operating_point(drive.circuit, drive.fixed_volts)
    general = dc.operating_point(drive.circuit, drive.fixed_volts, dc.NewtonOptions(by_currents=False))
    assert_close(fast.source_currents, general.source_currents, 1e-9, "source currents, cell currents vs node voltages")
    assert_close(fast.cell_currents, general.cell_currents, 1e-9, "cell currents, cell currents vs node voltages")
    assert_close(fast.node_volts, general.node_volts, 1e-9, "node voltages, cell currents vs node voltages")


@pytest.mark.parametrize("kind", KINDS)
def test_vectors_the_cell_current_path_cannot_finish_go_to_the_general_newton(kind, rng):
    """Two Newton iterations are too few for this path: every vector is handed back and solved by the
    node-voltage Newton (two iterations, then each vector's own), to the same answer."""
    xb = _awkward(rng, 10, 8, kind)
    drive = make_drive(xb, **_drives(rng, xb, 4))
    _, solved = _solve(drive, newton_iter=2)
    assert not solved.any()
    handed_back = dc.operating_point(drive.circuit, drive.fixed_volts, dc.NewtonOptions(shared_iter=2))
    default = dc.operating_point(drive.circuit, drive.fixed_volts)
    assert_close(handed_back.source_currents, default.source_currents, 1e-9, "source currents, handed back vs not")


def test_the_cell_current_path_takes_only_the_circuits_it_solves(rng):
    v = np.full(5, 0.5)
    systems = {kind: currents.system_for(make_drive(random_crossbar(rng, 5, 4, kind), v).circuit) for kind in KINDS}
    assert isinstance(systems["1S1R"], currents.SinhCurrents)
    assert isinstance(systems["1T1R"], currents.TransistorCurrents)
    floating = [make_drive(random_crossbar(rng, 5, 4, kind), v, floating_cols=np.r_[False, True, False, False])
                for kind in KINDS]
    diode = make_drive(random_crossbar(rng, 5, 4, "1S1R", selector=Diode(bipolar=True)), v)
    assert all(currents.system_for(d.circuit) is None for d in (*floating, diode))
    assert SinhSelector().law()[0] == "sinh"
