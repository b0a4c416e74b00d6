"""Arrays in time: capacitance in the design and the deck, transients against closed forms, energy."""
import numpy as np
import pytest

import circuitsim
from circuitsim.devices import NmosAccess, SinhSelector, Yakopcic
from circuitsim.readout import adc_tolerance, read_latency, read_pulse_energy
from circuitsim.transient import Drive, array_transient

ENGINES = ["spice", "numpy"]


def ramp_drive(rows: int, cols: int, volts: float, rise_s: float, duration_s: float) -> Drive:
    """Every row ramps from 0 to volts in rise_s and holds it; columns at 0 V."""
    t = np.array([0.0, rise_s, duration_s])
    return Drive(t, np.outer([0.0, volts, volts], np.ones(rows)), np.zeros((3, cols)))


def ramp_response(t, tau_s: float, rise_s: float) -> np.ndarray:
    """Response of a first-order lag (time constant tau_s, unit DC gain) to a unit ramp of rise_s."""
    t = np.asarray(t, dtype=float)
    rising = (t - tau_s * (1 - np.exp(-t / tau_s))) / rise_s
    held = 1 - tau_s / rise_s * np.expm1(rise_s / tau_s) * np.exp(-t / tau_s)
    return np.where(t < rise_s, rising, held)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("where", ["c_row", "c_cell"])
def test_single_cell_with_a_capacitor_follows_the_first_order_response(engine, where):
    """A driver resistance into one cell with a capacitor at its row node: v(t) is a first-order
    lag of the ramp; the column current is g·v, plus C·dv/dt when the capacitor spans the cell."""
    g, r_driver, cap, volts, rise = 1e-4, 2e4, 1e-12, 0.3, 2e-9
    xb = circuitsim.Crossbar(conductance=[[g]], r_driver=r_driver, **{where: cap})
    g_node = 1 / r_driver + g
    tau = cap / g_node
    res = array_transient(xb, None, ramp_drive(1, 1, volts, rise, 12 * tau), engine=engine)
    v = volts / r_driver / g_node * ramp_response(res.time_s, tau, rise)
    expected = g * v
    if where == "c_cell":  # dv/dt of the lag: (input − v)/tau scaled by the DC gain
        v_in = volts * np.minimum(res.time_s / rise, 1.0)
        expected = expected + cap * (v_in / r_driver / g_node - v) / tau
    full_scale = g * volts / r_driver / g_node
    error = np.max(np.abs(res.column_currents[:, 0] - expected)) / full_scale
    assert error < 3e-4, f"column current off the closed form by {error:.2g} of full scale"


@pytest.mark.parametrize("engine", ENGINES)
def test_distributed_rc_line_elmore_delay_and_slowest_mode(engine):
    """A row of n equal RC sections, open at its far end, driven by a fast ramp: the area between
    input and far-end voltage is V·(Elmore delay RC·n(n+1)/2), exactly for any input that settles;
    the far end's late decay is the ladder's slowest mode, 4/(RC)·sin²(π/(2(2n+1)))."""
    n, r, cap, volts, rise = 12, 50.0, 2e-14, 1.0, 1e-12
    elmore = r * cap * n * (n + 1) / 2
    slowest = 4 / (r * cap) * np.sin(np.pi / (2 * (2 * n + 1))) ** 2
    duration = 25 / slowest
    xb = circuitsim.Crossbar(conductance=np.zeros((1, n)), r_row=r, c_row=cap)
    t_eval = np.unique(np.r_[np.linspace(0, rise, 11), np.linspace(rise, duration, 8001)])  # numpy's output
    res = array_transient(xb, None, ramp_drive(1, n, volts, rise, duration), engine=engine,
                          max_step_s=duration / 4000, t_eval=t_eval, rtol=1e-8)
    t, v_far = res.time_s, res.cell_voltages[:, 0, -1]
    v_in = volts * np.minimum(t / rise, 1.0)
    area = np.trapezoid(v_in - v_far, t) / volts
    assert abs(area / elmore - 1) < 3e-4, f"area {area:.5g} s vs Elmore delay {elmore:.5g} s"
    late = (t > 2 / slowest) & (t < 8 / slowest)  # the next mode (9x faster) has died out
    rate = -np.polyfit(t[late], np.log(volts - v_far[late]), 1)[0]
    assert abs(rate / slowest - 1) < 3e-4, f"decay rate {rate:.6g}/s vs the slowest mode {slowest:.6g}/s"


@pytest.mark.parametrize("engine", ENGINES)
def test_energy_delivered_is_dissipated_plus_stored(engine, rng):
    """A 3x4 array with wire and cell capacitance charged by a ramp: at the end the capacitors hold
    ½·Σ C·ΔV² of the DC operating point, and the sources' energy equals that plus the energy
    dissipated in wires and cells, integrated from the node voltages."""
    rows, cols, volts = 3, 4, 0.4
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-5, 1e-4, (rows, cols)),
                             r_row=rng.uniform(100, 500, (rows, cols)), r_col=rng.uniform(100, 500, (rows, cols)),
                             r_driver=1e3, c_row=2e-14, c_col=3e-14,
                             c_cell=1e-15, c_couple=5e-15)
    res = array_transient(xb, None, ramp_drive(rows, cols, volts, 1e-10, 4e-9), engine=engine)
    dc = circuitsim.simulate(xb, np.full(rows, volts), engine="numpy")
    circuit = res.circuit
    v_dc = dc.node_voltages
    held = 0.5 * sum(c * (v_dc[a] - (0.0 if b < 0 else v_dc[b])) ** 2
                     for a, b, c in zip(circuit.cap_a, circuit.cap_b, circuit.cap_farad))
    assert abs(res.stored_energy_j[-1] / held - 1) < 1e-4, \
        f"stored {res.stored_energy_j[-1]:.6g} J vs ½ΣCΔV² {held:.6g} J"
    cell_power = np.sum(res.cell_voltages * res.cell_currents, axis=(1, 2))
    node_v = res.node_voltages  # wire power: Σ (Δv)²/R over every segment
    wire_power = np.sum((node_v[:, circuit.res_a] - node_v[:, circuit.res_b]) ** 2 / circuit.res_ohm, axis=1)
    dissipated = np.trapezoid(cell_power + wire_power, res.time_s)
    error = (res.source_energy_j[-1] - dissipated - res.stored_energy_j[-1]) / res.source_energy_j[-1]
    assert abs(error) < 3e-4, f"delivered − dissipated − stored = {error:.2g} of the delivered energy"


def test_capacitance_adds_only_capacitor_lines_to_the_deck(rng):
    """Without capacitance the deck is what it was (no capacitor line, not even a comment); with it,
    the same deck plus one block of C lines, each with a finite value."""
    kw = dict(conductance=rng.uniform(1e-6, 1e-4, (3, 4)), r_row=2.0, r_col=3.0)
    v = rng.uniform(0, 0.3, 3)
    plain = circuitsim.netlist(circuitsim.Crossbar(**kw), v)
    zero = circuitsim.netlist(circuitsim.Crossbar(**kw, c_row=0.0, c_col=np.zeros((3, 4))), v)
    assert zero == plain and "\nC" not in plain and "capacitor" not in plain
    caps = circuitsim.netlist(circuitsim.Crossbar(**kw, c_row=1e-15, c_cell=2e-16, c_couple=3e-16), v)
    extra = [line for line in caps.splitlines() if line not in plain.splitlines()]
    assert [line for line in caps.splitlines() if line in extra] == extra
    assert len([line for line in extra if line.startswith("C")]) == 12 + 12 + 2 * 4 + 3 * 3
    assert circuitsim.Crossbar(**kw).as_dict().keys() == {"conductance", "r_row", "r_col", "r_driver", "r_sense",
                                                          "selector", "transistor"}


@pytest.mark.parametrize("kw, match", [
    ({"c_row": -1e-15}, "c_row must be non-negative"),
    ({"c_col": np.nan}, "c_col must be finite"),
    ({"c_cell": np.ones((2, 2)) * 1e-15}, r"c_cell must be a scalar or have shape \(2, 3\)"),
    ({"c_couple": "1p"}, "c_couple must be numeric"),
])
def test_bad_capacitance_is_refused(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        circuitsim.Crossbar(conductance=np.ones((2, 3)) * 1e-5, **kw)


def test_output_times_beyond_the_drive_are_refused():
    xb = circuitsim.Crossbar(conductance=[[1e-5]], c_row=1e-15, r_driver=1e3)
    with pytest.raises(ValueError, match="beyond the drive"):
        array_transient(xb, None, ramp_drive(1, 1, 0.2, 1e-10, 1e-9), engine="numpy", t_eval=[0.0, 2e-9])


def _rc_design(rng, rows, cols, cap_scale=1.0, **kw):
    """A small random array with wire, cell and coupling capacitance (time constants ~0.1-1 ns at
    cap_scale 1)."""
    return circuitsim.Crossbar(conductance=rng.uniform(1e-5, 1e-4, (rows, cols)),
                               r_row=rng.uniform(50, 500, (rows, cols)), r_col=rng.uniform(50, 500, (rows, cols)),
                               r_driver=rng.uniform(500, 2000, rows), r_sense=rng.uniform(0, 100, cols),
                               c_row=cap_scale * rng.uniform(1e-14, 5e-14, (rows, cols)),
                               c_col=cap_scale * rng.uniform(1e-14, 5e-14, (rows, cols)),
                               c_cell=cap_scale * 1e-15, c_couple=cap_scale * 5e-15, **kw)


def _pulse(rows, cols, amplitudes, t_rise, t_fall, duration, edge):
    """Rows pulse to amplitudes (rows,) between t_rise and t_fall with edges of edge; columns at 0 V."""
    t = np.array([0.0, t_rise, t_rise + edge, t_fall, t_fall + edge, duration])
    level = np.array([0, 0, 1, 1, 0, 0.0])
    return Drive(t, np.outer(level, amplitudes), np.zeros((len(t), cols)))


def assert_column_currents_agree(xb, cells, drive, tolerance=1e-3):
    """numpy and ngspice column currents at ngspice's time points, within tolerance/3 of full scale."""
    spice = array_transient(xb, cells, drive, engine="spice")
    exact = array_transient(xb, cells, drive, engine="numpy", t_eval=spice.time_s, detail=False)
    full_scale = np.max(np.abs(spice.column_currents))
    error = np.max(np.abs(exact.column_currents - spice.column_currents)) / full_scale
    assert error < tolerance / 3, f"column currents differ by {error:.2g} of full scale ({full_scale:.3g} A)"
    return spice, exact


@pytest.mark.parametrize("kind", ["1R", "1S1R"])
def test_numpy_and_ngspice_agree_on_a_read_pulse(rng, kind):
    rows, cols = 3, 4
    extra = {"selector": SinhSelector(i0=1e-6, v0=0.1)} if kind == "1S1R" else {}
    xb = _rc_design(rng, rows, cols, **extra)
    drive = _pulse(rows, cols, rng.uniform(0.1, 0.6, rows), 1e-10, 3e-9, 6e-9, 5e-11)
    assert_column_currents_agree(xb, None, drive)


def test_numpy_and_ngspice_agree_on_1t1r_with_switching_gates(rng):
    """Rows held at a read voltage; each row's gate switches on and off at its own times."""
    rows, cols = 3, 3
    xb = _rc_design(rng, rows, cols, transistor=NmosAccess())
    t = np.array([0.0, 1e-10, 1e-9, 1.1e-9, 2e-9, 2.1e-9, 3e-9, 3.1e-9, 5e-9])
    v_rows = np.outer(np.interp(t, [0, 1e-10], [0, 1]), rng.uniform(0.2, 0.5, rows))
    on = np.array([[0, 0, 1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 1, 1, 1.0]]).T
    drive = Drive(t, v_rows, np.zeros((len(t), cols)), 1.8 * on)
    spice, _ = assert_column_currents_agree(xb, None, drive)
    assert np.ptp(spice.column_currents[spice.time_s > 3.5e-9]) < np.ptp(spice.column_currents)  # gates mattered


@pytest.mark.parametrize("selector", [None, SinhSelector(i0=1e-6, v0=0.1)])
def test_numpy_and_ngspice_agree_on_stateful_cells(rng, selector):
    """Yakopcic cells behind RC lines (τ ~ 0.1 µs) switched by µs pulses."""
    rows, cols = 2, 3
    xb = circuitsim.Crossbar(conductance=np.ones((rows, cols)), r_row=rng.uniform(10, 50, (rows, cols)),
                             r_col=20.0, r_driver=200.0, c_row=rng.uniform(2e-10, 5e-10, (rows, cols)),
                             c_col=3e-10, c_cell=1e-11, selector=selector)
    cells = np.array([[Yakopcic(x0=x) for x in row] for row in rng.uniform(0.1, 0.9, (rows, cols))])
    drive = _pulse(rows, cols, [1.4, -1.3], 2e-7, 2.2e-6, 4e-6, 5e-8)
    spice, _ = assert_column_currents_agree(xb, cells, drive)
    full = array_transient(xb, cells, drive, engine="numpy", t_eval=spice.time_s)
    error = np.max(np.abs(full.state - spice.state))
    assert error < 1e-3 / 3, f"states differ by {error:.2g}"
    assert np.ptp(spice.state) > 0.01  # the cells switched


@pytest.mark.parametrize("kind", ["1R", "1S1R", "1T1R"])
def test_a_held_drive_ends_at_the_dc_answer(rng, kind):
    """After many time constants the transient's column currents are simulate()'s DC answer."""
    rows, cols = 3, 4
    extra = {"1R": {}, "1S1R": {"selector": SinhSelector(i0=1e-6, v0=0.1)}, "1T1R": {"transistor": NmosAccess()}}
    xb = _rc_design(rng, rows, cols, **extra[kind])
    v_read = rng.uniform(0.1, 0.5, rows)
    drive = Drive([0.0, 1e-10, 30e-9], np.outer([0, 1, 1], v_read), np.zeros((3, cols)))
    res = array_transient(xb, None, drive, engine="numpy", detail=False, t_eval=[29e-9, 30e-9])
    dc = circuitsim.simulate(xb, v_read, engine="numpy").column_currents
    error = np.max(np.abs(res.column_currents[-1] - dc)) / np.max(np.abs(dc))
    assert error < 1e-7, f"held transient ends {error:.2g} (relative) from the DC answer"


@pytest.mark.parametrize("engine", ENGINES)
def test_read_latency_of_a_single_cell_matches_the_first_order_settling(engine):
    """One cell behind a driver resistance with a capacitor at its row node: after the ramp,
    |v − v∞|/v∞ = (τ/rise)·(e^(rise/τ) − 1)·e^(−t/τ), so it stays below tol from
    t = τ·ln((τ/rise)·(e^(rise/τ) − 1)/tol)."""
    g, r_driver, cap, volts, rise, tol = 1e-4, 2e4, 1e-12, 0.3, 2e-9, adc_tolerance(8)
    xb = circuitsim.Crossbar(conductance=[[g]], r_driver=r_driver, c_row=cap)
    tau = cap / (1 / r_driver + g)
    expected = tau * np.log(tau / rise * np.expm1(rise / tau) / tol)
    lat = read_latency(xb, [volts], tolerance=tol, engine=engine, rise_s=rise, rtol=1e-7)
    assert lat.full_scale_a == pytest.approx(g * volts / (1 + g * r_driver), rel=1e-9)
    error = abs(lat.latency_s / expected - 1)
    assert error < 1e-3, f"latency {lat.latency_s:.6g} s vs closed form {expected:.6g} s ({error:.2g} off)"


@pytest.mark.parametrize("engine", ENGINES)
def test_read_pulse_energy_of_a_single_cell_splits_into_dc_cost_and_line_charging(engine):
    """The same cell read by a ramp held to t_end: the sources deliver ∫ v_in·(v_in − v)/R_d dt; the
    static part is that of the DC currents, the dynamic part C·v∞²·(1 − ...) of charging the line,
    all from the closed-form v(t) (integrated on a fine grid)."""
    g, r_driver, cap, volts, rise = 1e-4, 2e4, 1e-12, 0.3, 2e-9
    xb = circuitsim.Crossbar(conductance=[[g]], r_driver=r_driver, c_row=cap)
    g_node = 1 / r_driver + g
    tau, v_inf = cap / g_node, volts / r_driver / g_node
    t_end = 15 * tau
    t = np.linspace(0, t_end, 400_001)
    v_in = volts * np.minimum(t / rise, 1.0)
    v = v_inf * ramp_response(t, tau, rise)
    delivered = np.trapezoid(v_in * (v_in - v) / r_driver, t)
    static = np.trapezoid(v_in ** 2 * g / (1 + g * r_driver), t)
    res = read_pulse_energy(xb, [volts], duration_s=t_end, engine=engine, rise_s=rise, rtol=1e-7)
    errors = {name: abs(got / want - 1) for name, got, want in [
        ("delivered", res.delivered_j, delivered), ("static", res.static_j, static),
        ("dynamic", res.dynamic_j, delivered - static), ("stored", res.stored_j, 0.5 * cap * v_inf ** 2)]}
    assert max(errors.values()) < 3e-4, f"relative errors {errors}"
    assert res.dissipated_j == pytest.approx(res.delivered_j - res.stored_j)


@pytest.mark.parametrize("call, match", [
    (lambda xb: read_latency(xb, [0.2, 0.2], tolerance=0.0), r"tolerance is a fraction of full scale in \(0, 1\)"),
    (lambda xb: read_latency(xb, [0.2]), r"v_rows must have shape \(2,\)"),
    (lambda xb: read_latency(xb, [0.0, 0.0]), "DC current is 0"),
    (lambda xb: read_latency(xb, [0.2, 0.2], rise_s=-1e-9), "rise_s must be positive"),
    (lambda xb: read_pulse_energy(xb, [0.2, 0.2], duration_s=1e-12, rise_s=1e-11), "must exceed rise_s"),
    (lambda xb: adc_tolerance(0), "bits must be"),
])
def test_bad_read_input_is_refused(call, match):
    xb = circuitsim.Crossbar(conductance=np.full((2, 2), 1e-5), r_driver=1e3, c_row=1e-15)
    with pytest.raises(ValueError, match=match):
        call(xb)
