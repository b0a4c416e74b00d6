"""Compact device models: one parameter set, SPICE and numpy twin agree, published behaviour."""
import dataclasses

import numpy as np
import pytest
from margins import assert_close
from model_agreement import assert_twin_agrees

import circuitsim
from circuitsim.devices import (
    VTEAM,
    Diode,
    LinearIonDriftBiolek,
    LinearIonDriftJoglekar,
    SinhSelector,
    ThresholdSwitch,
    Yakopcic,
)
from circuitsim.devices.library import lib_default, lib_path
from circuitsim.netlist import number
from circuitsim.spice.worker import SpiceJob, run_job
from circuitsim.transient import pulse_train, sine, single_drive, transient

STATEFUL = (LinearIonDriftJoglekar, LinearIonDriftBiolek, VTEAM, Yakopcic, ThresholdSwitch)


@pytest.mark.parametrize("cls", STATEFUL)
def test_twin_defaults_come_from_the_lib(cls):
    device = cls()
    for f in dataclasses.fields(device):
        assert getattr(device, f.name) == lib_default(device.spice_lib, device.spice_subckt, f.name)


# --- SPICE subckt and numpy twin agree (the three-line tests of the README) ---

def test_joglekar_twin_agrees():
    assert_twin_agrees(LinearIonDriftJoglekar(x0=0.3), sine(1.0, 1.0, cycles=2))
    assert_twin_agrees(LinearIonDriftJoglekar(), pulse_train([1, 1, -1, -1], 0.05, 0.1, 1e-3), min_state_swing=0.1)


def test_biolek_twin_agrees():
    assert_twin_agrees(LinearIonDriftBiolek(), sine(1.0, 1.0, cycles=2))
    assert_twin_agrees(LinearIonDriftBiolek(), pulse_train([1, 1, -1, -1], 0.05, 0.1, 1e-3), min_state_swing=0.1)


def test_vteam_twin_agrees():
    assert_twin_agrees(VTEAM(), sine(0.5, 1e6, cycles=2))
    assert_twin_agrees(VTEAM(), pulse_train([0.5, 0.5, -0.5, -0.5], 20e-9, 50e-9, 1e-9), min_state_swing=0.5)


def test_yakopcic_twin_agrees():
    assert_twin_agrees(Yakopcic(), sine(1.0, 100.0, cycles=2), min_state_swing=0.5)
    assert_twin_agrees(Yakopcic(), pulse_train([1, 1, -1, -1], 2e-4, 5e-4, 1e-5), min_state_swing=0.5)


def test_threshold_switch_twin_agrees():
    assert_twin_agrees(ThresholdSwitch(), single_drive([0, 1e-6, 2e-6], [0, 1.5, 0]), min_state_swing=0.9)
    assert_twin_agrees(ThresholdSwitch(), pulse_train([1.5, -1.5], 20e-9, 50e-9, 2e-9), min_state_swing=0.9)


# --- published qualitative behaviour ---

def _lobe_area(res):
    """|∮ I dV| over the positive half of the first period (one lobe of the loop) [W]."""
    half = res.time_s <= res.time_s[-1] / 2
    return abs(np.trapezoid(res.current_a[half], res.voltage_v[half]))


@pytest.mark.parametrize("device, f0", [(LinearIonDriftBiolek(), 1.0), (Yakopcic(x0=0.5), 1e3)])
def test_pinched_hysteresis_lobe_shrinks_with_frequency(device, f0):
    runs = [transient(device, sine(1.0, f, cycles=1)) for f in (f0, 4 * f0, 16 * f0)]
    for res in runs:  # pinched: no current where the voltage crosses zero (a PWL breakpoint at T/2)
        crossing = np.abs(res.voltage_v) < 1e-6
        assert crossing.any()
        assert_close(res.current_a[crossing], 0.0, atol=1e-6 * np.max(np.abs(res.current_a)), what="current at V = 0")
    areas = [_lobe_area(r) for r in runs]
    assert areas[0] > areas[1] > areas[2] > 0
    assert areas[2] < 0.5 * areas[0]


def test_joglekar_state_depends_on_charge_only():
    res = transient(LinearIonDriftJoglekar(x0=0.3), sine(1.0, 1.0, cycles=1))
    assert np.ptp(res.state) > 0.2
    assert_close(res.state[-1], 0.3, atol=1e-3, what="state after one zero-mean period")


def test_vteam_does_not_move_between_its_thresholds():
    device = VTEAM()
    below = transient(device, pulse_train([0.9 * device.voff, 0.9 * device.von], 1e-6, 3e-6, 1e-8))
    assert_close(below.state, device.x0, atol=1e-9, what="state between the thresholds")
    above = transient(device, pulse_train([2.5 * device.voff], 1e-6, 3e-6, 1e-8))
    assert above.state[-1] - device.x0 > 0.1


def _onset_voltage(device, v_end, ramp_s):
    """Voltage of a slow ramp 0 -> v_end at which the SPICE state first moves by 1e-6."""
    res = transient(device, single_drive([0, ramp_s], [0, v_end]), max_step_s=ramp_s / 5000)
    moved = np.abs(res.state - device.x0) > 1e-6
    assert moved.any(), f"the state never moved up to {v_end} V"
    return res.voltage_v[np.argmax(moved)]


def test_vteam_switches_at_its_threshold_voltages():
    device = VTEAM()
    assert_close(_onset_voltage(device, 0.05, 5e-4), device.voff, atol=2e-3, what="onset voltage (voff)")
    assert_close(_onset_voltage(device, -0.3, 3e-3), device.von, atol=5e-3, what="onset voltage (von)")


def test_yakopcic_sets_and_resets_at_its_threshold_voltages():
    device = Yakopcic(x0=0.5)
    assert_close(_onset_voltage(device, 0.3, 0.03), device.vp, atol=5e-3, what="SET onset voltage")
    assert_close(_onset_voltage(device, -0.3, 0.03), -device.vn, atol=5e-3, what="RESET onset voltage")


def test_threshold_switch_snaps_on_above_vth_and_off_below_vhold():
    ts = ThresholdSwitch()
    res = transient(ts, single_drive([0, 1e-6, 2e-6], [0, 1.5, 0]))
    on = res.state > 0.5
    assert_close(res.voltage_v[np.argmax(on)], ts.vth, atol=0.01, what="turn-on voltage")
    assert_close(res.voltage_v[np.flatnonzero(on)[-1]], ts.vhold, atol=0.01, what="turn-off voltage")
    rising = res.time_s < 1e-6
    i_on = res.current_a[on & rising & (res.voltage_v > 1.4)]
    i_off = res.current_a[rising & (res.voltage_v > 0.9) & (res.voltage_v < ts.vth - 0.01)]
    assert i_on.min() > 1e4 * i_off.max()  # snaps from ~nA to ~mA
    # the state switches within a few tau: from 10 % to 90 % in less than 10 tau
    t10, t90 = res.time_s[np.argmax(res.state > 0.1)], res.time_s[np.argmax(res.state > 0.9)]
    assert t90 - t10 < 10 * ts.tau


def _dc_sweep(subckt, params, volts):
    """Currents of a selector subckt at the given voltages, from an ngspice .dc sweep."""
    lines = [f'.include "{lib_path("selectors")}"', "V1 a 0 DC 0",
             f"X1 a 0 {subckt} params: " + " ".join(f"{k}={number(v)}" for k, v in params.items())]
    runs = tuple((f"alter v1 dc={number(v)}",) for v in volts)
    deck = "* selector I-V\n" + "\n".join(lines) + "\n.op\n.end\n"
    out = run_job(SpiceJob(deck, runs))
    return np.array([-vec["v1#branch"][0] for vec in out.vectors])


def test_sinh_selector_half_bias_current_is_100x_below_full_bias():
    sel = SinhSelector()
    i_full, i_half = _dc_sweep(sel.spice_subckt, sel.spice_params(), [1.0, 0.5])
    assert i_full / i_half >= 100
    twin_full, twin_half = sel.current(np.array([1.0, 0.5]))[0]
    assert_close([twin_full, twin_half], [i_full, i_half], rtol=1e-9, what="sinh selector current")


@pytest.mark.parametrize("bipolar", [False, True])
def test_diode_twin_matches_ngspice_d_model(bipolar):
    diode = Diode(bipolar=bipolar)
    volts = np.linspace(-1.5, 1.5, 61)
    spice = _dc_sweep(diode.spice_subckt, diode.spice_params(), volts)
    twin, slope = diode.current(volts)
    significant = np.abs(spice) > 1e-18
    assert_close(twin[significant], spice[significant], rtol=1e-6, what="diode current")
    assert np.all(slope > 0)
    assert (twin[-1] / twin[45] > 100) and (bipolar == (twin[0] < -1e-6))  # 1.5 V vs 0.75 V; reverse blocks


def test_diode_selector_in_a_crossbar_agrees_between_engines(rng):
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-5, 1e-4, (3, 4)), r_row=2.0, r_col=2.0,
                             selector=Diode(bipolar=True))
    v = rng.uniform(0.5, 1.5, 3)
    spice = circuitsim.simulate(xb, v, engine="spice")
    exact = circuitsim.simulate(xb, v, engine="numpy")
    assert_close(exact.column_currents, spice.column_currents, rtol=1e-6, what="column currents")


@pytest.mark.parametrize("make, match", [
    (lambda: VTEAM(kon=1.0), "kon < 0"),
    (lambda: Yakopcic(eta=0.5), "eta"),
    (lambda: LinearIonDriftJoglekar(x0=1.5), "x0"),
    (lambda: LinearIonDriftBiolek(roff=10.0), "roff must exceed ron"),
    (lambda: ThresholdSwitch(vhold=2.0), "vhold < vth"),
    (lambda: Yakopcic(ap=-1.0), "ap must be > 0"),
    (lambda: VTEAM(wc=float("nan")), "finite"),
    (lambda: Diode(isat=-1e-12), "isat"),
])
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
