"""Transient engines: drives, array transients (SPICE vs numpy), input checks."""
import numpy as np
import pytest

import circuitsim
from circuitsim.devices import VTEAM, Diode, NmosAccess, SinhSelector, ThresholdSwitch, Yakopcic
from circuitsim.transient import (
    Drive,
    array_transient,
    pulse_times,
    sine,
    single_drive,
    transient,
)


def test_pulse_train_shape():
    t, v = pulse_times([1.0, -2.0], width_s=1e-6, period_s=4e-6, edge_s=1e-7)
    assert t[0] == 0 and np.all(np.diff(t) > 0) and t[-1] == 8e-6
    assert v.max() == 1.0 and v.min() == -2.0 and v[0] == v[-1] == 0
    high = t[v == 1.0]
    assert high[-1] - high[0] == pytest.approx(1e-6)


def test_sine_is_sampled_exactly():
    d = sine(0.5, 1e3, cycles=2, points_per_cycle=100)
    assert d.duration_s == pytest.approx(2e-3) and d.v_rows.shape == (201, 1)
    np.testing.assert_allclose(d.v_rows[:, 0], 0.5 * np.sin(2 * np.pi * 1e3 * d.time_s))


@pytest.mark.parametrize("selector", [None, SinhSelector(i0=1e-6, v0=0.1), Diode(bipolar=True, isat=1e-9)])
def test_array_transient_spice_and_numpy_agree(rng, selector):
    xb = circuitsim.Crossbar(conductance=np.ones((2, 3)), r_row=rng.uniform(1, 5, (2, 3)), r_col=5.0,
                             selector=selector)
    t, envelope = pulse_times([1.2, -1.2], 2e-4, 5e-4, 1e-5)
    drive = Drive(t, envelope[:, None] * [1.0, 0.5], envelope[:, None] * [0.0, 0.5, 0.5])
    cells = np.array([[Yakopcic(x0=x) for x in row] for row in rng.uniform(0.1, 0.9, (2, 3))])
    spice = assert_engines_agree(xb, cells, drive)
    assert np.ptp(spice.state[:, 0, 0]) > 0.05  # the selected cell switched


def test_1t1r_array_transient_with_gate_waveforms_spice_and_numpy_agree(rng):
    """Row 0 (gate ramps up to 1.2 V, stays on) gets a SET then a RESET pulse; row 1 (gate at 1 V
    for its first pulse, then 0 V) gets two SET pulses and is cut off in the second one."""
    xb = circuitsim.Crossbar(conductance=np.ones((2, 3)), r_row=rng.uniform(1, 5, (2, 3)), r_col=5.0,
                             transistor=NmosAccess())
    t, set_reset = pulse_times([1.5, -1.5], 2e-4, 5e-4, 1e-5)
    v_rows = np.stack([set_reset, 0.5 * np.abs(set_reset)], axis=1)
    v_cols = 0.5 * np.abs(set_reset)[:, None] * [0.0, 1.0, 1.0]
    gates = np.stack([np.interp(t, [0, 1e-5, 1e-3], [0, 1.2, 1.2]), np.where(t < 5e-4, 1.0, 0.0)], axis=1)
    cells = np.array([[Yakopcic(x0=x) for x in row] for row in rng.uniform(0.02, 0.3, (2, 3))])
    spice = assert_engines_agree(xb, cells, Drive(t, v_rows, v_cols, gates))
    set_end, reset_end = np.searchsorted(spice.time_s, [5e-4, 1e-3]) - 1
    assert spice.state[set_end, 0, 0] - spice.state[0, 0, 0] > 0.02  # SET through the on transistor
    assert spice.state[set_end, 1, 0] - spice.state[0, 1, 0] > 0.02  # row 1's gate on: SET
    assert spice.state[reset_end, 0, 0] < spice.state[set_end, 0, 0] - 0.02  # row 0 RESETs
    assert np.abs(spice.cell_currents[set_end + 1:, 1]).max() < 1e-9  # row 1's gate off: cut off
    np.testing.assert_allclose(spice.state[reset_end, 1], spice.state[set_end, 1], atol=1e-9)


def assert_engines_agree(xb, cells, drive):
    """SPICE and the numpy twin on one array transient: state within 1e-3 (of the [0, 1] range),
    currents within 1% of the peak, cell voltages within 1 mV. Returns the SPICE run."""
    spice = array_transient(xb, cells, drive, engine="spice")
    exact = array_transient(xb, cells, drive, engine="numpy", t_eval=spice.time_s)
    np.testing.assert_allclose(exact.state, spice.state, atol=1e-3)
    peak = np.abs(spice.cell_currents).max()
    np.testing.assert_allclose(exact.cell_currents, spice.cell_currents, atol=0.01 * peak)
    np.testing.assert_allclose(exact.cell_voltages, spice.cell_voltages, atol=1e-3)
    np.testing.assert_array_equal(spice.initial_state, [[c.x0 for c in row] for row in cells])
    return spice


def test_open_cells_carry_no_current():
    xb = circuitsim.Crossbar(conductance=[[1.0, 0.0]], r_row=1.0, r_col=1.0)
    drive = Drive([0, 1e-6, 2e-6], [[0.0], [0.5], [0.5]], np.zeros((3, 2)))
    for engine in ("spice", "numpy"):
        res = array_transient(xb, VTEAM(), drive, engine=engine)
        assert np.all(res.cell_currents[:, 0, 1] == 0) and np.all(res.state[:, 0, 1] == VTEAM().x0)
        assert res.state[-1, 0, 0] > VTEAM().x0


def test_transient_records_provenance():
    res = transient(ThresholdSwitch(), single_drive([0, 1e-8], [0, 0.2]))
    assert res.provenance["engine"] == "spice" and res.provenance["ngspice_version"]
    assert len(res.provenance["netlist_sha256"]) == 64
    assert res.provenance["cells"][0]["type"] == "ThresholdSwitch"


@pytest.mark.parametrize("call, error, match", [
    (lambda: Drive([0, 1, 1], [[0], [1], [2]], [[0], [0], [0]]), ValueError, "strictly increase"),
    (lambda: Drive([0, 1], [[0], [np.nan]], [[0], [0]]), ValueError, "finite"),
    (lambda: Drive([0, 1], [[0], [1]], [[0]]), ValueError, "shape"),
    (lambda: pulse_times([1.0], 1e-6, 1e-6, 1e-7), ValueError, "period"),
    (lambda: transient(VTEAM(), sine(1, 1), engine="surrogate"), ValueError, "unknown transient engine"),
    (lambda: transient(SinhSelector(), sine(1, 1)), TypeError, "stateful"),
    (lambda: transient(VTEAM(), sine(1, 1), max_step_s=-1.0), ValueError, "max_step_s"),
    (lambda: array_transient(circuitsim.Crossbar(conductance=np.ones((2, 2))), VTEAM(), sine(1, 1)),
     ValueError, "rows"),
    (lambda: array_transient(circuitsim.Crossbar(conductance=np.ones((1, 2))), [VTEAM()],
                             Drive([0, 1], [[0], [1]], np.zeros((2, 2)))), TypeError, "cells"),
    (lambda: Drive([0, 1], [[0], [1]], [[0], [0]], [[1.0]]), ValueError, r"Drive.v_gates must have shape \(2, "),
    (lambda: Drive([0, 1], [[0], [1]], [[0], [0]], [[1.0], [np.inf]]), ValueError, "v_gates must be finite"),
    (lambda: array_transient(circuitsim.Crossbar(conductance=np.ones((2, 1)), transistor=NmosAccess()), VTEAM(),
                             Drive([0, 1], np.ones((2, 2)), np.zeros((2, 1)), np.ones((2, 1)))),
     ValueError, "1 gate lines, the array 2 rows"),
    (lambda: array_transient(circuitsim.Crossbar(conductance=np.ones((1, 1))), VTEAM(),
                             Drive([0, 1], [[0], [1]], [[0], [0]], [[1.0], [1.0]])),
     ValueError, "only to 1T1R arrays, this one is 1R"),
])
def test_bad_transient_input_raises_before_running(call, error, match):
    with pytest.raises(error, match=match):
        call()
