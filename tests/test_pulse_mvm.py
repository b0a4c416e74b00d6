"""Pulse-coded MVM and write pulses through RC lines: closed forms, real ngspice, both engines."""
import numpy as np
import pytest

from circuitsim.pulse_mvm import pulse_metrics, window_charge


def test_window_charge_is_exact_on_piecewise_linear_currents():
    # i = 2t on [0, 1], 2 on [1, 2], 2(3 − t) on [2, 3]; ∫ over [0.5, 2.5] = 0.75 + 2 + 0.75 = 3.5
    t = np.array([0.0, 1.0, 2.0, 3.0])
    i = np.array([[0.0, 0.0], [2.0, -4.0], [2.0, -4.0], [0.0, 0.0]])
    q = window_charge(t, i, 0.5, 2.5)
    assert np.allclose(q, [3.5, -7.0], rtol=1e-14, atol=0), q


def _rc_pulse(t, k, tau, width):
    """Cell voltage of a first-order RC node (gain k, time constant tau) under an ideal unit
    pulse of the given width."""
    return np.where(t < width, k * (1 - np.exp(-t / tau)), k * (1 - np.exp(-width / tau)) * np.exp(-(t - width) / tau))


def test_pulse_metrics_against_the_rc_closed_form():
    # peak k(1 − e^(−W/τ)); up-crossing −τ·ln(1 − thr/k); down-crossing W + τ·ln(peak/thr)
    tau, k, width, thr = 2e-9, 0.8, 5e-9, 0.4
    t = np.linspace(0, 20e-9, 40001)
    peak, t_up, above = pulse_metrics(t, _rc_pulse(t, k, tau, width), thr)
    peak_cf = k * (1 - np.exp(-width / tau))
    up_cf = -tau * np.log(1 - thr / k)
    above_cf = width + tau * np.log(peak_cf / thr) - up_cf
    for name, got, want in (("peak", peak, peak_cf), ("delay", t_up, up_cf), ("width", above, above_cf)):
        assert abs(got / want - 1) < 1e-6, f"{name}: {got:.6e} vs closed form {want:.6e}"
    neg = pulse_metrics(t, -_rc_pulse(t, k, tau, width), -thr)
    assert neg[0] == pytest.approx(-peak) and neg[1:] == pytest.approx((t_up, above))
    never = pulse_metrics(t, _rc_pulse(t, k, tau, width), 0.9)
    assert np.isnan(never[1]) and never[2] == 0.0
