"""Writing one cell of a memristor array: write disturb of the half-selected cells, in SPICE."""
import numpy as np
import pytest

import circuitsim
from circuitsim.devices import NmosAccess, Yakopcic
from circuitsim.programming import program_cell

XB = circuitsim.Crossbar(conductance=np.ones((3, 3)), r_row=2.0, r_col=2.0)
CELL = Yakopcic(x0=0.2)  # thresholds vp = 0.16 V, vn = 0.15 V
V_WRITE, WIDTH_S = 0.4, 1e-3  # V/2 = 0.2 V crosses vp, V/3 = 0.13 V does not
TRANSISTOR = NmosAccess()  # vto 0.5 V, kp 1 mA/V², λ 0.2 /V, w = l
XB_1T1R = circuitsim.Crossbar(conductance=np.ones((2, 2)), r_row=2.0, r_col=2.0, transistor=TRANSISTOR)


def test_v2_write_disturbs_half_selected_cells_and_v3_does_not():
    half = program_cell(XB, CELL, 1, 1, V_WRITE, WIDTH_S, scheme="v/2")
    third = program_cell(XB, CELL, 1, 1, V_WRITE, WIDTH_S, scheme="v/3")
    for p in (half, third):
        assert p.selected_change > 0.3  # the written cell SETs
        assert p.unselected_max_change < 1e-9
        assert p.waveforms.engine == "spice"
    assert half.half_selected_max_change > 0.05
    assert third.half_selected_max_change < 1e-9
    # the half-selected cells saw V/2 (minus a little IR drop), the selected one ~V
    peak_v = np.abs(half.waveforms.cell_voltages).max(axis=0)
    assert peak_v[half.half_selected].max() == pytest.approx(V_WRITE / 2, rel=0.05)
    assert peak_v[1, 1] == pytest.approx(V_WRITE, rel=0.05)
    assert half.half_selected.sum() == 4 and not half.half_selected[1, 1]


@pytest.mark.parametrize("xb, col, v_write", [(XB, 2, V_WRITE), (XB_1T1R, 1, 1.5)])
def test_programming_spice_and_numpy_agree(xb, col, v_write):
    spice = program_cell(xb, CELL, 0, col, v_write, WIDTH_S, scheme="v/2")
    exact = program_cell(xb, CELL, 0, col, v_write, WIDTH_S, scheme="v/2", engine="numpy")
    assert spice.selected_change > 0.1
    np.testing.assert_allclose(exact.states_after, spice.states_after, atol=1e-3)


def _saturation_current(v_gate, v_ds):
    """Level-1 NMOS saturation current [A] with its source at 0 V (MODELS.md: the SET compliance)."""
    t = TRANSISTOR
    return t.kp / 2 * t.w / t.l * (v_gate - t.vto) ** 2 * (1 + t.lam * v_ds)


def test_1t1r_set_is_limited_by_the_gate_voltage():
    """SET from HRS at 1.5 V: the transistor saturates, the device voltage falls to its SET
    threshold and the state stops where the device carries the compliance current."""
    cell = Yakopcic(x0=0.01)
    ends = {}
    for v_gate in (0.9, 1.2):
        p = program_cell(XB_1T1R, cell, 0, 1, 1.5, WIDTH_S, scheme="v/2", v_gate=v_gate)
        w = p.waveforms
        k = np.searchsorted(w.time_s, 1.01 * WIDTH_S)  # late in the pulse's plateau
        v_ds = w.cell_voltages[k, 0, 1] - w.device_voltages[k, 0, 1]
        i_set = w.cell_currents[k, 0, 1]
        # the source sits on the column wire, a fraction of a mV above ground: 1% covers it
        assert i_set == pytest.approx(_saturation_current(v_gate, v_ds), rel=0.01)
        assert np.abs(w.cell_currents[:, 0, 1]).max() <= 1.001 * i_set  # never above the compliance
        assert w.device_voltages[k, 0, 1] == pytest.approx(cell.vp, abs=0.01)  # switching has stopped
        assert p.v_gate == v_gate and p.unselected_max_change < 1e-9  # row 1's gate is off
        ends[v_gate] = (p.states_after[0, 1], i_set)
    (x_low, i_low), (x_high, i_high) = ends[0.9], ends[1.2]
    assert x_low < 0.6 * x_high and i_low < 0.6 * i_high
    assert x_low / x_high == pytest.approx(i_low / i_high, rel=0.05)  # LRS conductance ∝ x carries I_c


@pytest.mark.parametrize("call, match", [
    (lambda: program_cell(XB, CELL, 3, 0, V_WRITE, WIDTH_S), "outside"),
    (lambda: program_cell(XB, CELL, 0, 0, V_WRITE, WIDTH_S, v_gate=1.2), "v_gate applies only to 1T1R"),
    (lambda: program_cell(XB_1T1R, CELL, 0, 0, 1.5, WIDTH_S, v_gate=np.nan), "v_gate must be finite"),
])
def test_programming_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
