"""Programming: one write pulse and its disturb in SPICE; write-verify of whole arrays on the
quasi-static pulse model, checked against ngspice; faults, drift, the store."""
from dataclasses import replace

import numpy as np
import pytest

import circuitsim
from circuitsim.devices import VTEAM, NmosAccess, SinhSelector, StanfordPKU, Yakopcic
from circuitsim.errors import ProgrammingError
from circuitsim.programming import (
    Faults,
    ReadNoise,
    RetentionLaw,
    WriteVerify,
    conductance_at,
    program_array,
    program_cell,
    program_to_store,
)
from circuitsim.programming.pulses import CellModels, apply_pulse, apply_pulse_transient, write_bias
from circuitsim.spice.worker import SpiceWorker
from circuitsim.store import Store

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


# ---- write-verify of whole arrays (circuitsim.programming.verify, pulses, faults, drift, record) -------------


YAK_WV = WriteVerify(v_set_start=0.18, v_set_step=0.01, v_set_max=0.5, v_reset_start=0.18, v_reset_step=0.01,
                     v_reset_max=0.5, width_s=3e-5, v_read=0.1, tolerance=0.05)
PKU_WV = WriteVerify(v_set_start=1.7, v_set_step=0.05, v_set_max=3.0, v_reset_start=1.3, v_reset_step=0.03,
                     v_reset_max=2.2, width_s=1e-8, v_read=0.1, tolerance=0.05, v_gate_set=1.8, v_gate_reset=3.0)


def test_single_cell_ispp_takes_the_pulses_the_vteam_rate_law_predicts():
    """A wire-less 1x1 VTEAM cell: in the window's flat middle dw/dt = kon·(V/von − 1)^aon/(xoff − xon),
    so pulse k (amplitude a_k, trapezoid edges e) moves w by kon/(xoff − xon)·((r−1)^3·width +
    2·e·(r−1)^4/(4r)), r = a_k/von; ISPP stops at the first pulse that brings G into the band."""
    dev = VTEAM(x0=0.9)
    wv = WriteVerify(v_set_start=0.21, v_set_step=0.002, v_set_max=0.22, v_reset_start=0.05, v_reset_step=0.02,
                     v_reset_max=0.5, width_s=1e-8, v_read=0.01, tolerance=0.05)
    target = 2e-3  # the largest step (at v_set_max) is smaller than the band: ISPP lands in it without overshoot
    res = program_array(circuitsim.Crossbar(conductance=[[1.0]]), dev, [[target]], wv)
    w_band = (1 / (target * (1 - wv.tolerance)) - dev.ron) / (dev.roff - dev.ron)  # the band's edge nearest HRS
    w, n = dev.x0, 0
    while w > w_band and n < 100:
        r = -min(wv.v_set_start + n * wv.v_set_step, wv.v_set_max) / dev.von  # VTEAM SETs with V < von < 0
        w += dev.kon / (dev.xoff - dev.xon) * ((r - 1) ** 3 * wv.width_s + 2 * wv.edge * (r - 1) ** 4 / (4 * r))
        n += 1
    assert n > 5 and res.pulses[0, 0] == n, (res.pulses, n)
    assert res.converged.all() and res.states[0, 0] == pytest.approx(w, abs=5e-4), (res.states, w)
    assert abs(res.relative_error[0, 0]) <= wv.tolerance


def _wired(n: int) -> circuitsim.Crossbar:
    """An n×n 1R array with 2 Ω wire segments (its conductance only marks cells that exist)."""
    return circuitsim.Crossbar(conductance=np.ones((n, n)), r_row=2.0, r_col=2.0)


XB4 = _wired(4)
XB4_1T1R = circuitsim.Crossbar(conductance=np.ones((4, 4)), r_row=2.0, r_col=2.0, transistor=TRANSISTOR)
PULSE_CASES = {  # crossbar, device, amplitudes of row 1 [V], width [s], scheme, gate [V], state range
    "yakopcic 1R v/2": (XB4, Yakopcic(), [0.4, 0, 0.35, 0.3], 3e-5, "v/2", None, (0.2, 0.8)),
    "stanford-pku 1T1R set": (XB4_1T1R, StanfordPKU(), [2.5, 0, 2.4, 2.3], 1e-8, "v/2", 2.0, (0.7, 0.9)),
    "vteam 1R v/3": (XB4, VTEAM(), [-0.25, 0, -0.23, -0.22], 1e-8, "v/3", None, (0.2, 0.8)),
}


@pytest.mark.parametrize("case", sorted(PULSE_CASES))
def test_quasistatic_pulse_agrees_with_the_ngspice_array_transient(case):
    """One row pulse writing three cells of a 4x4 array with 2 Ω wires: the quasi-static model
    (DC operating point + each device's own ODE) against the full ngspice transient."""
    xb, dev, amps, width, scheme, gate, (low, high) = PULSE_CASES[case]
    states = np.random.default_rng(1).uniform(low, high, (4, 4))
    models = CellModels(dev, (4, 4))
    bias = write_bias((4, 4), 1, np.array(amps), scheme, v_gate=gate)
    quasi = apply_pulse(xb, models, states, bias, width, width / 100)
    spice = apply_pulse_transient(xb, models, states, bias, width, width / 100, engine="spice")
    moved_q, moved_s = quasi.states - states, spice.states - states
    assert np.abs(moved_s).max() > 0.02
    err = np.abs(moved_q - moved_s).max()
    assert err < 1e-3, f"state difference {err:.3g}"
    # disturb (and writes) within 1 % of what ngspice gives, wherever a cell moved
    moving = np.abs(moved_s) > 1e-4
    rel = np.max(np.abs(moved_q - moved_s)[moving] / np.abs(moved_s)[moving])
    assert rel < 0.01 / 3, f"relative state-change difference {rel:.3g}"
    energy = abs(quasi.cell_energy_j.sum() / spice.cell_energy_j.sum() - 1)
    assert energy < 0.01, f"cell energy differs by {energy:.3g}"


WV_CASES = {  # crossbar, cells, targets [S] (uniform range), write-verify
    "1R yakopcic 3x3": (_wired(3), Yakopcic(x0=0.05), (1.5e-3, 6e-3), YAK_WV),
    "1S1R yakopcic 3x3": (circuitsim.Crossbar(conductance=np.ones((3, 3)), r_row=2.0, r_col=2.0,
                                              selector=SinhSelector(i0=1e-5, v0=0.05)),
                          Yakopcic(x0=0.05), (1.5e-3, 6e-3), replace(YAK_WV, v_set_start=0.4, v_set_max=0.9,
                                                                     v_reset_start=0.4, v_reset_max=0.9)),
    "1T1R stanford-pku 2x2": (circuitsim.Crossbar(conductance=np.ones((2, 2)), r_row=2.0, r_col=2.0,
                                                  transistor=TRANSISTOR), StanfordPKU(x0=0.9), (1e-5, 1e-4), PKU_WV),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if "1T1R" not in c else c
                                  for c in WV_CASES])
def test_write_verify_agrees_between_ngspice_and_quasistatic(case):
    """The whole loop with every pulse a full ngspice transient (KLU, gear) against the quasi-static
    pulse model: the same pulses per cell, final conductances within a third of the verify
    tolerance, disturbs and cell energies within a third of 1 %."""
    xb, cells, (low, high), wv = WV_CASES[case]
    target = np.random.default_rng(2).uniform(low, high, xb.shape)
    quasi = program_array(xb, cells, target, wv)
    with SpiceWorker(timeout_s=120) as worker:
        spice = program_array(xb, cells, target, wv, pulse_engine="spice", worker=worker)
    assert quasi.converged.all() and spice.converged.all()
    np.testing.assert_array_equal(quasi.pulses, spice.pulses)
    diff = np.abs(quasi.conductance_s / spice.conductance_s - 1).max()
    assert diff < wv.tolerance / 3, f"final conductances differ by {diff:.3g}"
    energy = np.abs(quasi.energy_j / spice.energy_j - 1).max()
    assert energy < 0.01 / 3, f"cell energies differ by {energy:.3g}"
    big = np.abs(spice.disturb_s) > 1e-3 * target
    if xb.transistor is not None:  # the unselected rows' transistors are off: no disturb in either
        assert not big.any() and np.abs(quasi.disturb_s / target).max() < 1e-9
        return
    assert big.any()
    rel = np.max(np.abs(quasi.disturb_s - spice.disturb_s)[big] / np.abs(spice.disturb_s)[big])
    assert rel < 0.01 / 3, f"disturb differs by {rel:.3g}"


def test_write_verify_reaches_every_band_and_v3_disturbs_less_than_v2():
    xb = _wired(4)
    target = np.random.default_rng(3).uniform(1e-3, 6e-3, (4, 4))
    runs = {s: program_array(xb, Yakopcic(x0=0.05), target, replace(YAK_WV, scheme=s))
            for s in ("v/2", "v/3")}
    for res in runs.values():
        assert res.converged.all() and not res.failed.any()
        assert np.all(res.pulses >= 1) and res.n_pulses < res.pulses.sum()  # a row pulse writes several cells
        assert res.total_energy_j > res.energy_j.sum() > 0
    half, third = (np.abs(runs[s].disturb_s / target).max() for s in ("v/2", "v/3"))
    assert third < 0.5 * half, (half, third)


def _saturation(v_gate, v_ds):
    t = TRANSISTOR
    return t.kp / 2 * t.w / t.l * (v_gate - t.vto) ** 2 * (1 + t.lam * v_ds)


def test_concurrent_1t1r_rows_give_what_one_row_after_another_gives():
    """Rows of a 1T1R array simulated side by side (their isolated pulses solved as blocks of one
    nodal matrix) against the same loop one row at a time: the same pulses per cell, conductances,
    energies and programming time."""
    xb = circuitsim.Crossbar(conductance=np.ones((5, 4)), r_row=2.0, r_col=np.linspace(1.0, 3.0, 20).reshape(5, 4),
                             transistor=TRANSISTOR)
    target = np.random.default_rng(6).uniform(1e-5, 1e-4, (5, 4))
    together = program_array(xb, StanfordPKU(x0=0.9), target, PKU_WV)
    apart = program_array(xb, StanfordPKU(x0=0.9), target, PKU_WV, concurrent_rows=False)
    np.testing.assert_array_equal(together.pulses, apart.pulses)
    assert together.n_pulses == apart.n_pulses and together.time_s == pytest.approx(apart.time_s, rel=1e-12)
    g = np.abs(together.conductance_s / apart.conductance_s - 1).max()
    assert g < 1e-4, f"conductances differ by {g:.3g}"  # Newton stops at 1e-7 V: rates agree to ~1e-6
    e = np.abs(together.energy_j / apart.energy_j - 1).max()
    assert e < 1e-4, f"cell energies differ by {e:.3g}"
    assert together.total_energy_j == pytest.approx(apart.total_energy_j, rel=1e-4)


def test_1t1r_compliance_limits_the_set_current():
    xb = circuitsim.Crossbar(conductance=np.ones((3, 3)), r_row=2.0, r_col=2.0, transistor=TRANSISTOR)
    target = np.random.default_rng(4).uniform(1e-5, 5e-5, (3, 3))
    peaks = {}
    for v_gate in (1.6, 1.8):
        res = program_array(xb, StanfordPKU(x0=0.9), target, replace(PKU_WV, v_gate_set=v_gate))
        assert res.converged.all()
        assert res.peak_set_current_a.max() <= _saturation(v_gate, PKU_WV.v_set_max), res.peak_set_current_a.max()
        peaks[v_gate] = res.peak_set_current_a.max()
    assert peaks[1.6] < 0.85 * peaks[1.8]


def test_stuck_cells_and_broken_lines_are_reported():
    xb = _wired(4)
    target = np.full((4, 4), 4e-3)
    stuck_on, stuck_off = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    stuck_on[0, 1], stuck_off[2, 3] = True, True
    open_cols = np.array([False, False, True, False])
    faults = Faults((4, 4), stuck_on=stuck_on, stuck_off=stuck_off, open_cols=open_cols)
    res = program_array(xb, Yakopcic(x0=0.05), target, YAK_WV, faults=faults)
    unreachable = stuck_on | stuck_off | open_cols[None, :]  # an open column's cells see only sneak paths
    np.testing.assert_array_equal(res.failed, unreachable)
    np.testing.assert_array_equal(res.stuck & ~open_cols[None, :], stuck_on | stuck_off)
    assert res.converged[~unreachable].all()
    assert res.conductance_s[0, 1] == pytest.approx(Yakopcic().current(0.1, 1.0) / 0.1)  # held at the ON end, x = 1
    assert res.conductance_s[2, 3] < 1e-9


def test_drift_follows_the_models_retention_law_at_two_temperatures():
    """Relaxation reproduces characterize's retention law; at 360 K it runs faster by exactly the
    Arrhenius factor of the law's Ea, so the same relaxed state is reached that much earlier."""
    dev = Yakopcic()
    law = RetentionLaw.of(dev)
    s = law.settings
    x_p = np.array([[0.2, 0.6]])
    times = np.array([1.0, 1e3, 1e6, 3.15e8])
    kb = 8.617333262e-5
    for t_k in (300.0, 360.0):
        tau = s.retention_tau_s * np.exp(s.ea_ev / kb * (1 / t_k - 1 / s.t_ref_k))
        for t in times:
            g = conductance_at(dev, x_p, t, v_read=0.1, temperature_k=t_k)
            x = s.retention_x_rest + (x_p - s.retention_x_rest) * (1 + t / tau) ** -s.retention_nu
            np.testing.assert_allclose(g, dev.current(0.1, x) / 0.1, rtol=1e-12)
    factor = np.exp(s.ea_ev / kb * (1 / 300.0 - 1 / 360.0))
    cold = conductance_at(dev, x_p, 1e5, v_read=0.1, temperature_k=300.0)
    hot = conductance_at(dev, x_p, 1e5 / factor, v_read=0.1, temperature_k=360.0)
    np.testing.assert_allclose(hot, cold, rtol=1e-9)
    assert factor > 20
    # the model's own law from its characterization settings: Stanford-PKU relaxes with its own ea
    assert RetentionLaw.of(StanfordPKU()).settings.ea_ev == StanfordPKU().ea


@pytest.mark.parametrize("name", ["lid_joglekar", "lid_biolek", "vteam", "yakopcic", "stanford_pku"])
def test_the_sourced_law_relaxes_every_model_towards_its_high_resistance_end(name):
    """aihwkit's CMO/HfOx fit loses conductance with time: x_rest must be the model's HRS end, and a
    mid-window state must lose 1.12e-3 of the window per e-fold of time (0.0890 µS of 79.19 µS)."""
    from circuitsim.devices.memristors import MEMRISTORS

    dev = MEMRISTORS[name]()
    law = RetentionLaw.of(dev)
    ends = CellModels(dev, (1, 2)).read_conductance(np.array([[0.0, 1.0]]), 0.1)[0]
    assert ends[int(law.settings.retention_x_rest)] == ends.min()
    x_rest = law.settings.retention_x_rest
    x = law.state(abs(x_rest - 0.5), np.array([1e6, 1e6 * np.e]), 300.0)
    per_efold = abs(x[1] - x[0]) * 0.5 / abs(x[0] - x_rest)  # for a state at mid-window at 1e6 s
    assert per_efold == pytest.approx(0.0890 / 79.19, rel=0.01), per_efold


def test_read_noise_grows_with_time_and_is_seeded():
    dev = Yakopcic()
    x = np.full((40, 40), 0.5)
    noise = ReadNoise(q_lrs=1e-4, q_hrs=1e-4)
    g0 = dev.current(0.1, 0.5) / 0.1
    law = RetentionLaw.of(dev, retention_tau_s=1e30)  # no relaxation: noise only
    spread = [np.std(conductance_at(dev, x, t, v_read=0.1, law=law, noise=noise, seed=1) / g0) for t in (1.0, 1e8)]
    assert spread[0] < spread[1]
    expected = np.sqrt(1e-4 * np.log((1e8 + 1e-7) / 2e-7))
    assert spread[1] == pytest.approx(expected, rel=0.1)
    np.testing.assert_array_equal(conductance_at(dev, x, 5.0, v_read=0.1, noise=noise, seed=3),
                                  conductance_at(dev, x, 5.0, v_read=0.1, noise=noise, seed=3))


@pytest.mark.parametrize("target, wv, xb, match", [
    (np.full((2, 2), 0.02), YAK_WV, None, "outside the device's range"),
    (np.full((2, 2), 4e-5), replace(PKU_WV, v_gate_set=0.8), "1T1R", "can never SET"),
    (np.full((2, 2), 4e-3), replace(YAK_WV, tolerance=1e-4), None, "tolerance 0.0001 is impossible"),
])
def test_bad_programming_requests_leave_nothing_in_the_store(tmp_path, target, wv, xb, match):
    path = tmp_path / "prog.h5"
    with Store.open(path, "a"):
        pass  # an existing, empty store
    if xb == "1T1R":
        xb, cells = circuitsim.Crossbar(conductance=np.ones((2, 2)), transistor=TRANSISTOR), StanfordPKU(x0=0.9)
    else:
        xb, cells = _wired(2), Yakopcic(x0=0.05)
    with pytest.raises(ProgrammingError, match=match):
        program_to_store(path, xb, cells, target, wv)
    with Store.open(path) as store:
        assert len(store) == 0


def test_programming_result_is_stored_with_provenance(tmp_path):
    path = tmp_path / "prog.h5"
    xb = _wired(2)
    seen = []
    res = program_to_store(path, xb, Yakopcic(x0=0.05), np.full((2, 2), 3e-3), YAK_WV,
                           progress=lambda done, total: seen.append((done, total)))
    with Store.open(path) as store:
        (key,) = store.keys()
        point = store.read(key)
    np.testing.assert_array_equal(point["outputs/conductance_s"], res.conductance_s)
    np.testing.assert_array_equal(point["inputs/target_conductance_s"], res.target_s)
    assert point["provenance/pulse_engine"] == "quasistatic" and point["provenance/write_verify/tolerance"] == 0.05
    assert seen[-1] == (4, 4) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_a_network_is_programmed_tile_by_tile_and_drifts_with_time():
    from circuitsim import nn
    from circuitsim.programming.network import network_at, program_network

    rng = np.random.default_rng(5)
    net = nn.Network((rng.normal(size=(6, 3)),), (np.zeros(3),), (1.0,))
    hw = nn.Hardware(g_min_s=1.5e-3, g_max_s=6e-3, levels=4, tile_rows=4, tile_cols=4, r_wire=2.0)
    mapped = nn.map_network(net, hw, rng.random((20, 6)))
    seen = []
    wv = replace(YAK_WV, scheme="v/3")  # V/2 half-selects Yakopcic above its threshold: later rows disturb earlier ones
    programmed = program_network(mapped, Yakopcic(x0=0.05), wv, progress=lambda done, total: seen.append(done))
    tiles = [t for layer in mapped.layers for t in layer.tiles]
    assert seen == list(range(1, len(tiles) + 1)) == list(range(1, 5))  # 2 row blocks x 2 column blocks
    for tile, record, new in zip(tiles, programmed.all_tiles(), programmed.mapped.layers[0].tiles):
        assert record.result.converged.all()
        np.testing.assert_array_equal(new.crossbar.conductance, record.result.conductance_s)
        error = np.abs(record.result.conductance_s / tile.crossbar.conductance - 1).max()
        assert error < 0.15, error  # the 5 % band + the disturb of the rows written later
    levels = programmed.error_per_level()
    assert len(levels) <= hw.levels and sum(len(e) for e in levels.values()) == programmed.summary["cells"]
    now = network_at(programmed, 0.0)
    np.testing.assert_allclose(now.layers[0].tiles[0].crossbar.conductance,
                               programmed.mapped.layers[0].tiles[0].crossbar.conductance, rtol=1e-12)
    later = network_at(programmed, 1e6).layers[0].tiles[0].crossbar.conductance
    compensated = network_at(programmed, 1e6, compensation="global").layers[0].tiles[0].crossbar.conductance
    g0 = now.layers[0].tiles[0].crossbar.conductance
    loss = 1 - later / g0  # the sourced law relaxes towards the high-resistance end: 3 % after 1e6 s
    assert (loss > 0).all() and loss.max() > 0.01, loss.max()
    ratio = compensated / later
    assert np.allclose(ratio, ratio[0, 0]) and not np.isclose(ratio[0, 0], 1.0)  # one factor per tile


def test_stuck_cells_are_compensated_in_their_differential_pair():
    from circuitsim.programming.network import _compensate_stuck

    target = np.array([[3e-3, 1e-3, 1e-3, 2e-3]])
    stuck = np.array([[False, False, False, True]])
    g_stuck = np.full((1, 4), 4e-3)
    fixed = _compensate_stuck(target, stuck, g_stuck, 1e-3, 8e-3)
    np.testing.assert_allclose(fixed, [[3e-3, 1e-3, 1e-3 + 4e-3 - 2e-3, 2e-3]])  # G+ − G− = −1 mS kept
    clipped = _compensate_stuck(target, stuck, np.full((1, 4), 1.5e-3), 1e-3, 8e-3)
    assert clipped[0, 2] == 1e-3  # 1.5 mS − 1 mS would leave the range: clipped to it


def test_column_remapping_puts_the_largest_weights_on_the_cleanest_pairs():
    from circuitsim.programming.network import _assign_columns

    # two tile pairs: pair 0 holds a large difference (5 mS − 1 mS), pair 1 none; physical pair 0
    # has a stuck-OFF cell, pair 1 is clean, pair 2 (a spare) has a stuck-ON cell
    target = np.array([[5e-3, 1e-3, 1e-3, 1e-3]])
    stuck = np.array([[True, False, False, False, False, True]])
    g_stuck = np.array([[1e-3, 0, 0, 0, 0, 6e-3]])
    no_spare = _assign_columns(target, stuck[:, :4], g_stuck[:, :4], 1e-3, 6e-3, False, 1, 4)
    np.testing.assert_array_equal(no_spare, [2, 3, 0, 1])  # the big weight moves to the clean pair
    # with the partner compensated, stuck-OFF G+ under a 0-weight pair costs nothing (G− follows it)
    spare = _assign_columns(target, stuck, g_stuck, 1e-3, 6e-3, True, 1, 4)
    np.testing.assert_array_equal(spare[:2], [2, 3])
    # bit slices: the significant slice (s = 1) gets the clean pair even when its digit is smaller
    sliced = np.array([[2e-3, 1e-3, 1e-3, 3e-3]])  # pair 0 = slice 0 (+1 mS), pair 1 = slice 1 (−2 mS)
    bad = np.array([[False, False, False, True]])
    cols = _assign_columns(np.tile(sliced, (1, 1)), np.tile(bad[:, [0, 1, 0, 3]], 1), np.full((1, 4), 6e-3),
                           1e-3, 6e-3, False, 2, 4)
    np.testing.assert_array_equal(cols, [2, 3, 0, 1])


def _small_network(rng, tile_rows=4, tile_cols=4, slices=1):
    from circuitsim import nn

    net = nn.Network((rng.normal(size=(8, 4)),), (np.zeros(4),), (1.0,))
    hw = nn.Hardware(g_min_s=1.5e-3, g_max_s=6e-3, levels=4, tile_rows=tile_rows, tile_cols=tile_cols,
                     r_wire=2.0, slices=slices)
    return net, nn.map_network(net, hw, rng.random((20, 8)))


def _weight_error(programmed, mapped) -> float:
    """Σ |achieved − target| of every pair's G⁺ − G⁻ over the network [S]."""
    total = 0.0
    for want, got in zip(mapped.layers[0].tiles, programmed.mapped.layers[0].tiles):
        w, g = want.crossbar.conductance, got.crossbar.conductance
        total += np.abs((g[:, 0::2] - g[:, 1::2]) - (w[:, 0::2] - w[:, 1::2])).sum()
    return total


def test_remapping_around_stuck_cells_keeps_the_weights_closer():
    """A network with 15 % stuck cells: pair compensation, then remapping onto spare pairs, each
    leave less weight error than the plain mapping; the stuck cells are reported in every case."""
    from circuitsim.programming.network import program_network

    rng = np.random.default_rng(7)
    _, mapped = _small_network(rng, tile_rows=8, tile_cols=8)
    wv = replace(YAK_WV, scheme="v/3")
    runs = {name: program_network(mapped, Yakopcic(x0=0.05), wv, stuck_on_rate=0.075, stuck_off_rate=0.075,
                                  seed=3, **kw)
            for name, kw in (("plain", {}), ("pair", {"fault_compensation": True}),
                             ("spares", {"fault_compensation": True, "remap_columns": True, "spare_pairs": 2}))}
    errors = {name: _weight_error(p, mapped) for name, p in runs.items()}
    assert errors["pair"] < 0.8 * errors["plain"], errors
    assert errors["spares"] < 0.8 * errors["pair"], errors
    for p in runs.values():
        tiles = p.all_tiles()
        assert p.summary["stuck"] == sum(int(t.faults.stuck.sum()) for t in tiles) > 0
        for record, tile in zip(tiles, p.mapped.layers[0].tiles):
            np.testing.assert_array_equal(tile.crossbar.conductance, record.result.conductance_s[:, record.columns])
    spare_tile = runs["spares"].all_tiles()[0]
    assert spare_tile.result.states.shape == (8, 12) and len(set(spare_tile.columns)) == 8
    with pytest.raises(ValueError, match="spare_pairs"):
        program_network(mapped, Yakopcic(x0=0.05), wv, spare_pairs=1)


def test_fault_study_draws_the_same_faults_for_every_mapping():
    from circuitsim.programming.network import fault_study

    rng = np.random.default_rng(8)
    net, mapped = _small_network(rng)
    x = rng.random((30, 8))
    labels = net.predict(x)  # the float network's own answers
    mappings = {"none": {}, "pair compensation": {"fault_compensation": True}}
    seen = []
    wv = replace(YAK_WV, scheme="v/3", max_pulses=20)  # stuck cells are given up after 20 pulses
    study = fault_study(mapped, Yakopcic(x0=0.05), wv, x, labels, [0.0, 0.2], mappings=mappings,
                        progress=lambda done, total: seen.append((done, total)))
    assert study["accuracy"].shape == (2, 2) and study["mappings"] == list(mappings)
    assert study["stuck"][0, 0] == study["stuck"][1, 0] == 0
    assert study["stuck"][0, 1] == study["stuck"][1, 1] > 0  # the same draws for both mappings
    assert study["accuracy"][0, 0] == study["accuracy"][1, 0] >= 0.8, study["accuracy"]
    assert seen[-1] == (4, 4)


@pytest.mark.slow
def test_programming_demo_writes_its_figures_and_results(tmp_path):
    from circuitsim.demo import ProgrammingDemoConfig, run_programming_demo

    lines = []
    config = ProgrammingDemoConfig(hidden=4, tile=16, levels=4, times_s=(1.0, 3.15e8), temperatures_k=(300.0,),
                                   stuck_rates=(0.1,))
    out = run_programming_demo(tmp_path, config, echo=lines.append)
    assert {p.name for p in tmp_path.iterdir()} >= {"programming.png", "accuracy_vs_time.png", "fault_study.png",
                                                    "results.h5"}  # (and the store's lock file)
    assert out["summary"]["failed"] == 0 and out["faults"]["stuck"][0, 1] > 0
    assert set(out["tables"]) == {"1 pair/weight", "2 pairs/weight"}
    with Store.open(tmp_path / "results.h5") as store:
        assert {"programming", "fault_study", "reference_accuracy"} <= set(store.keys())
    assert any("fault study" in line for line in lines)
