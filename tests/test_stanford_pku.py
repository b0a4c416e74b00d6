"""Stanford-PKU gap RRAM with Joule heating: one parameter set, SPICE and twin agree, published behaviour."""
import dataclasses

import numpy as np
import pytest
from margins import assert_close
from model_agreement import assert_twin_agrees

from circuitsim.devices import StanfordPKU
from circuitsim.devices.library import lib_default, lib_path
from circuitsim.netlist import number
from circuitsim.spice.worker import SpiceJob, run_job
from circuitsim.transient import pulse_train, sine, single_drive, transient

SET_V, RESET_V, WIDTH_S, EDGE_S = 1.8, -1.3, 100e-9, 10e-12  # the published stimuli
READ_V, READ_S = 0.1, 10e-9  # a read far below the switching field
# the abrupt, self-heating SET closes the gap within ~1 ns: both engines must resolve it to ~ps
AGREEMENT_STEP_S = 4e-12


def test_twin_defaults_come_from_the_lib():
    device = StanfordPKU()
    for f in dataclasses.fields(device):
        assert getattr(device, f.name) == lib_default("memristors", "stanford_pku", f.name)


def test_twin_agrees_over_a_sine_sweep():
    assert_twin_agrees(StanfordPKU(), sine(2.0, 1e7, cycles=2), min_state_swing=0.9, max_step_s=AGREEMENT_STEP_S)


def test_twin_agrees_over_a_pulse_train():
    drive = pulse_train([SET_V, RESET_V], WIDTH_S, WIDTH_S + 5e-9, 1e-9)
    assert_twin_agrees(StanfordPKU(), drive, min_state_swing=0.5, max_step_s=AGREEMENT_STEP_S)


def _levels(levels_v, hold_s):
    """PWL of flat levels, each held hold_s[k] after a 10 ps edge, starting from 0 V."""
    t, v = [0.0], [0.0]
    for level, hold in zip(levels_v, hold_s):
        t += [t[-1] + EDGE_S, t[-1] + EDGE_S + hold]
        v += [level, level]
    return single_drive(t, v)


def _pulse_between_reads(device, amplitude_v):
    """(R before, R after) [Ω], read in SPICE at READ_V around one published-width pulse, and the run."""
    res = transient(device, _levels([READ_V, amplitude_v, READ_V], [READ_S, WIDTH_S, READ_S]))
    before = np.abs(res.time_s - READ_S / 2).argmin()
    after = np.abs(res.time_s - (res.time_s[-1] - READ_S / 2)).argmin()
    return READ_V / res.current_a[before], READ_V / res.current_a[after], res


def test_set_at_1p8v_closes_the_gap_and_lowers_the_resistance():
    r_before, r_after, res = _pulse_between_reads(StanfordPKU(), SET_V)
    assert res.state[-1] < 0.01  # gap at g_min
    assert r_after < r_before / 100


def test_reset_at_minus_1p3v_opens_the_gap_and_raises_the_resistance():
    r_before, r_after, res = _pulse_between_reads(StanfordPKU(x0=0.01), RESET_V)
    assert res.state[-1] > 0.5  # the growing gap lowers γ, so RESET slows down (gradual, unlike SET)
    assert r_after > 10 * r_before


def _time_to_cross(device, amplitude_v, level):
    """Time [s] after the pulse edge at which the SPICE state first crosses `level`."""
    res = transient(device, _levels([amplitude_v], [WIDTH_S]))
    crossed = (res.state < level) if amplitude_v > 0 else (res.state > level)
    assert crossed.any(), f"the state never crossed {level} at {amplitude_v} V, T0 = {device.t0} K"
    return res.time_s[np.argmax(crossed)]


@pytest.mark.parametrize("amplitude_v, x0, level", [(SET_V, 0.9, 0.5), (RESET_V, 0.01, 0.3)])
def test_higher_ambient_temperature_switches_faster(amplitude_v, x0, level):
    times = [_time_to_cross(StanfordPKU(x0=x0, t0=t0), amplitude_v, level) for t0 in (273.0, 298.0, 350.0)]
    assert times[0] > times[1] > times[2]
    assert times[2] < 0.7 * times[0]


def test_dc_loop_sets_and_resets_at_lower_voltages_when_hotter():
    """The published ±2 V triangle at several ambient temperatures (what a temperature
    characterization runs): each completes, and V_set and |V_reset| fall as t0 rises."""
    period_s = 1e-6
    drive = single_drive([0, period_s / 4, 3 * period_s / 4, period_s], [0, 2.0, -2.0, 0])
    v_set, v_reset = [], []
    for t0 in (250.0, 300.0, 400.0):
        res = transient(StanfordPKU(t0=t0), drive, timeout_s=60)
        v_set.append(res.voltage_v[np.argmax(res.state < 0.5)])
        v_reset.append(res.voltage_v[np.argmax((res.time_s > period_s / 4) & (res.state > 0.5))])
        assert res.state.min() < 0.01 and res.state[-1] > 0.99  # full SET, full RESET
    assert 2.0 > v_set[0] > v_set[1] > v_set[2] > 1.05
    assert -2.0 < v_reset[0] < v_reset[1] < v_reset[2] < -1.05


def test_nothing_moves_below_the_field_threshold():
    device = StanfordPKU(x0=0.5)
    v_threshold = device.f_min * device.tox / device.gamma(device.gap(device.x0))  # γ·|V|/tox = F_min
    below = transient(device, pulse_train([0.95 * v_threshold, -0.95 * v_threshold], WIDTH_S, WIDTH_S + 1e-9, EDGE_S))
    assert_close(below.state, device.x0, atol=1e-9, what="state below the field threshold")
    for sign in (1.0, -1.0):
        above = transient(device, pulse_train([sign * 1.1 * v_threshold], WIDTH_S, WIDTH_S + 1e-9, EDGE_S))
        assert -sign * (above.state[-1] - device.x0) > 1e-3


def test_joule_heating_node_in_spice_matches_the_twin():
    """An ngspice .op below the switching field (the state rests at x = 0): the subckt's
    temp node is t0 + |V·I|·rth with t0 passed as an instance parameter."""
    device = StanfordPKU(t0=350.0)
    params = " ".join(f"{k}={number(v)}" for k, v in device.spice_params().items())
    deck = (f'* heating\n.include "{lib_path("memristors")}"\nV1 a 0 DC 1.0\n'
            f"X1 a 0 stanford_pku params: {params}\n.op\n.end\n")
    vec = run_job(SpiceJob(deck)).vectors[0]
    current = -vec["v1#branch"][0]
    assert_close(vec["x1.x"][0], 0.0, atol=1e-9, what="state")
    assert_close(current, device.current(1.0, 0.0), rtol=1e-9, what="current")
    assert_close(vec["x1.temp"][0], device.temperature(1.0, 0.0), rtol=1e-9, what="temperature")
    assert vec["x1.temp"][0] - device.t0 > 10  # ~12 mW through 2.1 kK/W


@pytest.mark.parametrize("make, match", [
    (lambda: StanfordPKU(g_max=0.1e-9), "g_max > g_min"),
    (lambda: StanfordPKU(beta=5.0), "gamma0"),
    (lambda: StanfordPKU(t0=0.0), "t0 must be > 0"),
    (lambda: StanfordPKU(x0=1.2), "x0"),
])
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_x0_zero_reads_and_resets_in_both_engines():
    """x0 = 0 (the smallest gap, documented as valid) used to fail in ngspice with "timestep too
    small, trouble with node gam" even for a 0.1 V read."""
    device = StanfordPKU(x0=0.0)
    read = transient(device, _levels([READ_V], [READ_S]))
    assert_close(read.current_a[-1], device.current(READ_V, 0.0), rtol=1e-6, what="read current at x0 = 0")
    assert_close(read.state, 0.0, atol=1e-6, what="state during the read")
    assert_twin_agrees(device, _levels([READ_V, RESET_V], [READ_S, 20e-9]), min_state_swing=0.05,
                       max_step_s=AGREEMENT_STEP_S)
