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


ENGINES = ["spice", "numpy"]


def _random_array(rows, cols, seed, **wires_and_caps):
    import circuitsim

    rng = np.random.default_rng(seed)
    return circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (rows, cols)), **wires_and_caps), rng


@pytest.mark.parametrize("engine", ENGINES)
def test_ideal_wires_make_pwm_and_bit_serial_equal_g_v_width(engine):
    # closed form: with no wire R or C, the charge of column j is Σ_i G_ij·amplitude·width_i exactly
    from circuitsim.pulse_mvm import bit_serial_mvm, pwm_mvm

    xb, rng = _random_array(5, 4, 1)
    x = rng.uniform(-1, 1, 5)
    mvm = pwm_mvm(xb, x, amplitude_v=0.2, full_width_s=10e-9, edge_s=0.5e-9, engine=engine)
    assert np.allclose(mvm.decoded_ideal, x @ xb.conductance, rtol=1e-12, atol=0)
    err = np.abs(mvm.error_vs_ideal).max()
    assert err < 1e-10, f"{engine}: PWM with ideal wires off G·x·width by {err:.1e} of full scale"
    ints = rng.integers(-7, 8, 5)
    bits = bit_serial_mvm(xb, ints, bits=3, amplitude_v=0.2, slot_s=4e-9, width_s=2e-9, edge_s=0.5e-9,
                          engine=engine)
    err = np.abs(bits.decoded - ints @ xb.conductance).max() / bits.full_scale
    assert err < 1e-10, f"{engine}: bit-serial with ideal wires off G·x by {err:.1e} of full scale"


@pytest.mark.parametrize("engine", ENGINES)
def test_without_capacitance_a_1s1r_read_is_its_quasi_static_answer(engine):
    # identity: with no capacitance the transient is the DC answer at every instant; what is left
    # is the DC reference's quadrature over the ramps (O(1/substeps²))
    import circuitsim
    from circuitsim.devices import SinhSelector
    from circuitsim.pulse_mvm import pwm_mvm

    rng = np.random.default_rng(3)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (5, 4)), r_row=3.0, r_col=3.0,
                             selector=SinhSelector(i0=1e-6, v0=0.1))
    mvm = pwm_mvm(xb, rng.uniform(-1, 1, 5), amplitude_v=0.5, full_width_s=5e-9, edge_s=0.5e-9, engine=engine)
    err = np.abs(mvm.error_vs_dc).max()
    assert err < 5e-5, f"{engine}: 1S1R transient vs quasi-static {err:.1e} of full scale"
    assert np.abs(mvm.error_vs_ideal).max() > 0.05, "the selector's nonlinearity should show against G·V"


def _rc_array():
    return _random_array(6, 5, 2, r_row=5.0, r_col=5.0, r_driver=2e3, c_row=20e-15, c_col=20e-15)


@pytest.mark.parametrize("engine", ENGINES)
def test_long_window_collects_the_dc_answer_short_window_loses_charge(engine):
    # closed form: a linear RC network passes, over a window until its capacitors are empty,
    # the DC transfer times the drive's area (its transfer function at s = 0); closing the
    # window at the end of the pulses loses the charge still on its way (the dynamic error)
    from circuitsim.pulse_mvm import pwm_mvm

    xb, _ = _rc_array()
    x = np.ones(6)
    kw = {"amplitude_v": 0.2, "full_width_s": 5e-9, "edge_s": 0.2e-9, "engine": engine}
    long_ = pwm_mvm(xb, x, tail_s=10e-9, **kw)
    short = pwm_mvm(xb, x, **kw)
    err_long, err_short = np.abs(long_.error_vs_dc).max(), short.error_vs_dc.max()
    assert err_long < 2e-5, f"long window vs DC: {err_long:.1e} of full scale"
    assert err_short < -30 * err_long, f"short window should lose charge: {err_short:.1e} vs {err_long:.1e}"
    assert np.all(np.abs(long_.error_vs_ideal) > 10 * err_long), "IR drop should show against G·V"


def test_engines_agree_on_the_dynamic_error():
    from circuitsim.pulse_mvm import bit_serial_mvm

    xb, rng = _rc_array()
    ints = rng.integers(0, 8, 6)
    kw = {"bits": 3, "amplitude_v": 0.2, "slot_s": 1e-9, "width_s": 0.5e-9, "edge_s": 0.1e-9}
    spice, numpy_ = (bit_serial_mvm(xb, ints, engine=e, **kw) for e in ENGINES)
    gap = np.abs(spice.decoded - numpy_.decoded).max() / spice.full_scale
    assert gap < 1e-4, f"numpy vs ngspice decoded bit-serial outputs differ by {gap:.1e} of full scale"
    assert np.abs(spice.error_vs_dc).max() > 30 * gap, "the dynamic error should dwarf the engines' gap"


def _first_order_response(knots_t, knots_u, tau, gain, t):
    """Exact response of τ·v' = gain·u − v (v(0) = 0) to the PWL input u, at the times t."""
    out, v0 = np.empty_like(t), 0.0
    edges = np.r_[knots_t, np.inf]
    for k in range(len(edges) - 1):
        t0, t1 = edges[k], edges[k + 1]
        a = knots_u[k]
        b = 0.0 if k + 1 >= len(knots_t) else (knots_u[k + 1] - a) / (t1 - t0)
        sel = (t >= t0) & (t < t1)
        s = t[sel] - t0
        out[sel] = gain * (a + b * s) - gain * b * tau + (v0 - gain * a + gain * b * tau) * np.exp(-s / tau)
        if np.isfinite(t1):
            s1 = t1 - t0
            v0 = gain * (a + b * s1) - gain * b * tau + (v0 - gain * a + gain * b * tau) * np.exp(-s1 / tau)
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_write_pulse_through_one_rc_segment_matches_the_closed_form(engine):
    # 1×1: driver -R- node(C to ground) -G- sense at 0 V: τ = RC/(1 + RG), gain 1/(1 + RG)
    import circuitsim
    from circuitsim.pulse_mvm import pulse_metrics, write_pulse
    from circuitsim.waveforms import trapezoid

    r, c, g = 1e3, 1e-12, 1e-3
    xb = circuitsim.Crossbar(conductance=[[g]], r_row=r, c_row=c)
    wp = write_pulse(xb, [(0, 0)], amplitude_v=1.0, width_s=2e-9, edge_s=0.05e-9, threshold_v=0.3, tail_s=3e-9,
                     engine=engine, max_step_s=2e-12)
    tau, gain = r * c / (1 + r * g), 1 / (1 + r * g)
    knots_t, knots_u = trapezoid(1.0, 2e-9, 0.05e-9)
    exact = _first_order_response(knots_t, knots_u, tau, gain, wp.time_s)
    err = np.abs(wp.cell_voltages[:, 0] - exact).max()
    assert err < 3e-4, f"{engine}: cell voltage off the closed form by {err:.1e} V"
    dense = np.linspace(0, wp.time_s[-1], 200001)
    peak, t_up, above = pulse_metrics(dense, _first_order_response(knots_t, knots_u, tau, gain, dense), 0.3)
    t_applied = pulse_metrics(knots_t, knots_u, 0.3)[1]
    for name, got, want, tol in (("peak", wp.peak_v[0], peak, 1e-3), ("delay", wp.delay_s[0], t_up - t_applied, 3e-3),
                                 ("width", wp.width_s[0], above, 1e-3)):
        rel = got / want - 1
        assert abs(rel) < tol, f"{engine} {name}: {got:.5e} vs closed form {want:.5e} (rel {rel:.1e})"


def test_far_cells_see_a_later_smaller_pulse_and_figures_draw(tmp_path):
    import circuitsim
    from circuitsim import plots
    from circuitsim.pulse_mvm import pwm_mvm, write_pulse

    uniform = circuitsim.Crossbar(conductance=np.full((6, 5), 5e-5), r_row=20.0, r_col=20.0, r_driver=200.0,
                                  c_row=20e-15, c_col=20e-15)
    wp = write_pulse(uniform, amplitude_v=1.0, width_s=2e-9, edge_s=0.1e-9, engine="spice")
    (near, far) = wp.cells
    assert near == (5, 0) and far == (0, 4)
    assert wp.peak_v[1] < wp.peak_v[0] and wp.delay_s[1] > wp.delay_s[0] > 0, (wp.peak_v, wp.delay_s)
    assert wp.width_s[1] < wp.applied_width_s
    xb, rng = _rc_array()
    mvm = pwm_mvm(xb, rng.uniform(0, 1, 6), amplitude_v=0.2, full_width_s=5e-9, edge_s=0.2e-9, engine="spice")
    for fig, name in ((plots.write_pulse(wp), "write.png"), (plots.pulse_mvm(mvm), "mvm.png")):
        assert plots.save(fig, tmp_path / name).stat().st_size > 10_000


@pytest.mark.parametrize("call, match", [
    (lambda xb: __import__("circuitsim.pulse_mvm").pulse_mvm.pwm_mvm(
        xb, np.ones(3), amplitude_v=0.2, full_width_s=1e-9, edge_s=1e-10), r"shape \(6,\)"),
    (lambda xb: __import__("circuitsim.pulse_mvm").pulse_mvm.pwm_mvm(
        xb, np.full(6, 2.0), amplitude_v=0.2, full_width_s=1e-9, edge_s=1e-10), "encodable"),
    (lambda xb: __import__("circuitsim.pulse_mvm").pulse_mvm.write_pulse(
        xb, [(6, 0)], amplitude_v=1.0, width_s=1e-9, edge_s=1e-10), "outside the 6x5 array"),
    (lambda xb: __import__("circuitsim.pulse_mvm").pulse_mvm.write_pulse(
        xb, amplitude_v=1.0, width_s=1e-9, edge_s=1e-10, scheme="V/3"), "unknown write scheme"),
])
def test_bad_input_one_line_errors(call, match):
    xb, _ = _rc_array()
    with pytest.raises(ValueError, match=match) as info:
        call(xb)
    assert "\n" not in str(info.value)
