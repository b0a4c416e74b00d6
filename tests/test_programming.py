"""Writing one cell of a memristor array: write disturb of the half-selected cells, in SPICE."""
import numpy as np
import pytest

import circuitsim
from circuitsim.devices import Yakopcic
from circuitsim.programming import program_cell

XB = circuitsim.Crossbar(conductance=np.ones((3, 3)), r_row=2.0, r_col=2.0)
CELL = Yakopcic(x0=0.2)  # thresholds vp = 0.16 V, vn = 0.15 V
V_WRITE, WIDTH_S = 0.4, 1e-3  # V/2 = 0.2 V crosses vp, V/3 = 0.13 V does not


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


def test_programming_spice_and_numpy_agree():
    spice = program_cell(XB, CELL, 0, 2, V_WRITE, WIDTH_S, scheme="v/2")
    exact = program_cell(XB, CELL, 0, 2, V_WRITE, WIDTH_S, scheme="v/2", engine="numpy")
    np.testing.assert_allclose(exact.states_after, spice.states_after, atol=1e-3)


def test_programming_rejects_a_cell_outside_the_array():
    with pytest.raises(ValueError, match="outside"):
        program_cell(XB, CELL, 3, 0, V_WRITE, WIDTH_S)
