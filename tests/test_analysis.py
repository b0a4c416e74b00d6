"""Read schemes, read margin, write disturb, IR drop and energy, checked against physics."""
import numpy as np
import pytest

import circuitsim
from circuitsim import analysis
from circuitsim.devices import SinhSelector

G_ON, G_OFF = 1e-4, 1e-6


def test_bias_schemes():
    b = analysis.bias((4, 5), 1, 2, 0.9, "v/3")
    np.testing.assert_allclose(b.v_rows, [0.3, 0.9, 0.3, 0.3])
    np.testing.assert_allclose(b.v_cols, [0.6, 0.6, 0.0, 0.6, 0.6])
    f = analysis.bias((4, 5), 1, 2, 0.9, "floating")
    assert f.floating_rows.tolist() == [True, False, True, True]
    assert f.floating_cols.tolist() == [True, True, False, True, True]
    with pytest.raises(ValueError, match="unknown scheme"):
        analysis.bias((4, 5), 1, 2, 0.9, "v/4")
    with pytest.raises(ValueError, match="outside"):
        analysis.bias((4, 5), 4, 2, 0.9, "v/2")


def array(n, r_wire=0.0, **kw):
    return circuitsim.Crossbar(conductance=np.full((n, n), G_OFF), r_row=r_wire, r_col=r_wire, **kw)


def test_read_margin_shrinks_with_array_size_and_wire_resistance():
    sel = SinhSelector()
    margin = {(n, r): analysis.read_margin(array(n, r, selector=sel), G_ON, G_OFF, v_read=1.0, scheme="v/2").margin
              for n in (4, 8, 16) for r in (0.0, 10.0)}
    for r in (0.0, 10.0):
        assert margin[(4, r)] > margin[(8, r)] > margin[(16, r)]
    for n in (4, 8, 16):
        assert margin[(n, 0.0)] > margin[(n, 10.0)]


def test_v3_beats_floating_for_a_linear_array():
    for n in (4, 8, 16):
        v3 = analysis.read_margin(array(n, 2.0), G_ON, G_OFF, scheme="v/3")
        fl = analysis.read_margin(array(n, 2.0), G_ON, G_OFF, scheme="floating")
        assert v3.margin > fl.margin
        assert fl.sneak_current > v3.sneak_current > 0


@pytest.mark.parametrize("selector", [None, SinhSelector(), SinhSelector(i0=1e-6, v0=0.05)])
def test_sneak_current_is_what_the_half_selected_cells_add(selector):
    """Issue 12: with a selector the reference current ignored it and the sneak current came out negative.

    No wires, V/2: the selected column's other rows hold v/2 across ON cells, so the sneak current
    is exactly (rows − 1) times one ON cell's current at v/2."""
    n, v = 6, 1.0
    rm = analysis.read_margin(array(n, selector=selector), G_ON, G_OFF, v_read=v, scheme="v/2")
    one_on = circuitsim.simulate(circuitsim.Crossbar(conductance=[[G_ON]], selector=selector), [v / 2],
                                 engine="numpy").column_currents[0]
    error = abs(rm.sneak_current / ((n - 1) * one_on) - 1)
    assert rm.sneak_current > 0 and error < 1e-9, f"sneak {rm.sneak_current:.6e} A, relative error {error:.2e}"


def test_read_margin_reads_the_design_as_simulated(rng):
    """Per-segment wires, driver/sense resistance and the design's own conductance map count."""
    from conftest import random_crossbar

    xb = random_crossbar(rng, 8, 7, "1S1R")
    worst = analysis.read_margin(xb, G_ON, G_OFF, v_read=1.0)
    design = analysis.read_margin(xb, G_ON, G_OFF, cell=(3, 2), v_read=1.0, pattern="design")
    g = xb.conductance.copy()
    g[3, 2] = G_ON
    assert design.i_on == analysis.read_current(xb.replace(conductance=g), 3, 2, 1.0, "v/2")
    no_driver = analysis.read_margin(xb.replace(r_driver=0.0, r_sense=0.0), G_ON, G_OFF, v_read=1.0)
    assert no_driver.i_on > worst.i_on and design.margin > worst.margin
    with pytest.raises(ValueError, match="unknown pattern"):
        analysis.read_margin(xb, G_ON, G_OFF, pattern="best")


def test_read_margin_spice_agrees_with_numpy():
    xb = array(6, 2.0, selector=SinhSelector())
    a = analysis.read_margin(xb, G_ON, G_OFF, v_read=1.0, scheme="v/3", engine="numpy")
    b = analysis.read_margin(xb, G_ON, G_OFF, v_read=1.0, scheme="v/3", engine="spice")
    for name in ("i_on", "i_off", "sneak_current"):
        error = abs(getattr(a, name) / getattr(b, name) - 1)
        assert error < 1e-6, f"{name}: numpy and spice differ by {error:.2e} (relative)"


def test_write_disturb_v2_and_v3():
    xb = circuitsim.Crossbar(conductance=np.full((8, 8), G_ON), r_row=2.0, r_col=2.0)
    w2 = analysis.write_disturb(xb, 3, 4, 2.0, "v/2")
    w3 = analysis.write_disturb(xb, 3, 4, 2.0, "v/3")
    assert 1.8 < w2.selected_v < 2.0
    assert w2.disturb_ratio == pytest.approx(0.5, abs=0.05)
    assert w3.disturb_ratio == pytest.approx(1 / 3, abs=0.05)
    assert w2.unselected_max_v < 0.05 and w3.unselected_max_v == pytest.approx(2 / 3, abs=0.05)
    assert w2.cell_voltages.shape == (8, 8)


def test_ir_drop_map_grows_away_from_driver_and_sense():
    xb = circuitsim.Crossbar(conductance=np.full((16, 16), G_ON), r_row=5.0, r_col=5.0)
    ir = analysis.ir_drop_map(xb, np.full(16, 0.5))
    assert ir.ideal.shape == (16, 16) and np.all(ir.ideal == 0.5)
    # worst at the far corner (row 0 is farthest from the sense nodes, last column from the driver)
    assert np.unravel_index(np.argmax(ir.relative), ir.relative.shape) == (0, 15)
    assert ir.drop[15, 0] == ir.drop.min() > 0
    np.testing.assert_allclose(ir.drop, ir.ideal - ir.effective)


def test_read_energy_matches_ohmic_power():
    g = np.random.default_rng(3).uniform(1e-6, 1e-4, (4, 6))
    v = np.array([0.1, 0.2, 0.3, 0.4])
    e = analysis.read_energy(circuitsim.Crossbar(conductance=g), v, t_read_s=1e-8)
    expected_power = np.sum(g * v[:, None] ** 2)  # no wires: every cell sees its row voltage
    error = abs(e.power / expected_power - 1)
    assert error < 1e-12, f"power off by {error:.1e} (relative)"
    assert e.energy_per_mac == pytest.approx(expected_power * 1e-8 / 24, rel=1e-12)
    with pytest.raises(ValueError, match="t_read_s must be positive"):
        analysis.read_energy(circuitsim.Crossbar(conductance=g), v, t_read_s=0)


def test_read_energy_takes_the_drive_simulate_takes():
    """Sense nodes off 0 V and a floating row change the power. No wires: Σ g (v_i − v_j)², the
    floating row at the conductance-weighted mean of the column voltages."""
    g = np.random.default_rng(4).uniform(1e-6, 1e-4, (4, 6))
    v_rows, v_cols = np.array([0.1, 0.2, 0.3, 0.4]), np.linspace(0.0, 0.05, 6)
    floating_rows = np.array([False, True, False, False])
    e = analysis.read_energy(circuitsim.Crossbar(conductance=g), v_rows, v_cols, floating_rows=floating_rows)
    v_rows[1] = g[1] @ v_cols / g[1].sum()
    expected = np.sum(g * (v_rows[:, None] - v_cols) ** 2)
    error = abs(e.power / expected - 1)
    assert error < 1e-10, f"power off by {error:.1e} (relative)"


def test_power_equals_dissipation_in_every_element(rng):
    from conftest import random_crossbar

    xb = random_crossbar(rng, 5, 5, "1S1R")
    res = circuitsim.simulate(xb, rng.uniform(0, 1, 5), engine="numpy")
    # power delivered = cell power + wire power; check cell part is below total and positive
    cell_power = np.sum(res.cell_voltages * res.cell_currents)
    assert 0 < cell_power < res.power
