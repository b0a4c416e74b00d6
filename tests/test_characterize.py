"""Characterization protocols, run small in real ngspice; figures checked against the models'
known values and closed forms, and SPICE against the numpy twin through the same extraction."""
import numpy as np
import pytest
from scipy.optimize import brentq

from circuitsim import characterize as ch
from circuitsim import extract
from circuitsim.characterize_settings import START_MARGIN
from circuitsim.cli import main
from circuitsim.devices import VTEAM, Yakopcic
from circuitsim.store import read_points

VT = VTEAM()


def run(protocol, model="vteam", engine="spice", params=None, **settings):
    return ch.characterize(protocol, model, params, engine=engine, **settings).figures


def test_vteam_loop_finds_its_thresholds_and_levels():
    f = run("loop", sweep_period_s=1e-3)
    assert f["set_polarity"] == -1  # VTEAM sets at negative voltage
    assert VT.von - 0.03 < f["v_set_v"] < VT.von
    assert VT.voff < f["v_reset_v"] < VT.voff + 0.03
    assert f["r_on_ohm"] == pytest.approx(VT.ron, rel=1e-3)
    assert f["r_off_ohm"] == pytest.approx(VT.roff, rel=1e-3)
    assert f["on_off_ratio"] == pytest.approx(VT.roff / VT.ron, rel=2e-3)


def test_yakopcic_loop_sets_just_past_vp():
    y = Yakopcic()
    f = run("loop", "yakopcic")
    assert f["set_polarity"] == 1
    assert y.vp < f["v_set_v"] < y.vp + 0.15
    assert f["v_reset_v"] < -y.vn
    assert f["r_on_ohm"] == pytest.approx(0.1 / (y.a1 * np.sinh(y.b * 0.1)), rel=0.01)  # x = 1 at read 0.1 V


@pytest.mark.parametrize("model", ["yakopcic", "lid_biolek"])
def test_spice_and_twin_loops_give_the_same_figures(model):
    spice, twin = run("loop", model), run("loop", model, engine="numpy")
    for name in ("v_set_v", "v_reset_v", "r_on_ohm", "r_off_ohm"):
        assert twin[name] == pytest.approx(spice[name], rel=0.01), name


def test_vteam_switching_times_match_the_closed_form():
    settings = {"pulse_set_v": (0.3, 0.4), "pulse_reset_v": (0.3, 0.6), "pulse_widths_s": (1e-9, 1e-7)}
    f = run("pulse", **settings)
    # the conductance is half-way (in log) between the start states at w* (R linear in w)
    r_mid = np.sqrt(f["r_hrs_start_ohm"] * f["r_lrs_start_ohm"])
    w_mid = (r_mid - VT.ron) / (VT.roff - VT.ron)
    span = VT.xoff - VT.xon
    reset = [(w_mid - START_MARGIN) * span / (VT.koff * (v / VT.voff - 1)) for v in settings["pulse_reset_v"]]
    set_ = [(1 - START_MARGIN - w_mid) * span / (-VT.kon * (v / -VT.von - 1) ** 3) for v in settings["pulse_set_v"]]
    assert f["t_switch_reset_s"] == pytest.approx(reset, rel=0.03)
    assert f["t_switch_set_s"] == pytest.approx(set_, rel=0.05)
    assert np.all(np.diff(f["r_after_reset_ohm"], axis=1) > 0)  # longer RESET pulses leave a higher R
    assert np.all(np.diff(f["r_after_set_ohm"], axis=1) <= 0)
    twin = run("pulse", engine="numpy", **settings)
    assert twin["t_switch_reset_s"] == pytest.approx(f["t_switch_reset_s"], rel=0.01)


def test_potentiation_depression_levels_and_figures():
    f = run("ptdp", train_pulses=10)
    g = f["conductance_s"]
    assert len(g) == 21
    assert np.all(np.diff(g[:11]) > 0) and np.all(np.diff(g[10:]) < 0)
    assert g.max() <= 1 / VT.ron * 1.001 and g.min() >= 1 / VT.roff * 0.999
    assert f["dynamic_range"] == pytest.approx(g.max() / g.min())
    assert 0 <= f["asymmetry"] <= 1 and 0 < f["linearity_error_potentiation"] <= 1
    assert f["nl_depression"] > 0  # RESET steps shrink as the device saturates


@pytest.mark.parametrize("a_over_n", [0.2, 1.0, 5.0])
def test_neurosim_nonlinearity_recovers_a_known_curve(a_over_n):
    n = np.arange(21) / 20
    g = 1e-4 + 1e-3 * np.expm1(-n / a_over_n) / np.expm1(-1 / a_over_n)
    assert extract.neurosim_nonlinearity(g) == pytest.approx(1 / a_over_n, rel=1e-6)
    assert extract.neurosim_nonlinearity(g[::-1]) == pytest.approx(-1 / a_over_n, rel=1e-6)
    assert abs(extract.neurosim_nonlinearity(np.linspace(1, 2, 21))) < 1e-6


def test_variability_reads_each_devices_levels_and_is_seeded():
    settings = {"n_devices": 3, "n_cycles": 2, "sigma_d2d": 0.2, "sigma_c2c": 0.0}
    f = run("variability", **settings)
    assert f["r_on_ohm"].shape == (3, 2)
    assert f["r_on_ohm"] == pytest.approx(np.repeat(f["device_ron"][:, None], 2, axis=1), rel=2e-3)
    assert f["r_off_ohm"] == pytest.approx(np.repeat(f["device_roff"][:, None], 2, axis=1), rel=2e-3)
    assert f["r_off_ohm_d2d"]["sigma_ln"] > 0.02
    again, other = run("variability", **settings), run("variability", **{**settings, "seed": 1})
    assert np.array_equal(again["r_off_ohm"], f["r_off_ohm"])
    assert not np.allclose(other["r_off_ohm"], f["r_off_ohm"])


def test_reads_below_threshold_do_not_disturb_and_noise_follows_q():
    quiet = run("read", n_reads=20, noise_q_lrs=0.0, noise_q_hrs=0.0)
    assert abs(quiet["disturb_lrs"]) < 1e-6 and quiet["noise_lrs"] < 1e-9
    assert quiet["r_lrs_mean_ohm"] == pytest.approx(VT.ron + (VT.roff - VT.ron) * START_MARGIN, rel=1e-3)
    disturbing = run("read", n_reads=20, read_v=0.1, noise_q_lrs=0.0, noise_q_hrs=0.0)
    assert disturbing["disturb_lrs"] > 0.05  # 0.1 V > voff: every read pushes the LRS towards OFF
    noisy = run("read", n_reads=20, noise_q_lrs=1e-6, noise_q_hrs=1e-4)
    assert noisy["noise_hrs"] > 3 * noisy["noise_lrs"] > 0


def test_temperature_scales_rates_by_arrhenius():
    s = ch.default_settings("vteam", temperatures_k=(300.0, 400.0))
    f = run("temperature", settings=s)
    at_ref = run("loop")
    assert f["v_set_v"][0] == pytest.approx(at_ref["v_set_v"], rel=1e-3)
    assert f["rate_factor"][1] == pytest.approx(np.exp(-s.ea_ev / ch.KB_EV_PER_K * (1 / 400 - 1 / 300)))
    assert abs(f["v_set_v"][1]) < abs(f["v_set_v"][0]) and f["v_reset_v"][1] < f["v_reset_v"][0]


def _vteam_window(x_lrs, x_hrs):
    return VT.current(0.01, x_lrs) / VT.current(0.01, x_hrs)


def test_retention_time_follows_the_law_and_arrhenius():
    s = ch.default_settings("vteam", retention_times_s=tuple(np.logspace(0, 8, 33)))
    f = run("retention", settings=s)
    law = brentq(lambda lt: _vteam_window(ch.relaxed_state(0.05, 10**lt, s), ch.relaxed_state(0.95, 10**lt, s))
                 - s.window_criterion, 0, 8)
    assert f["retention_time_s"] == pytest.approx(10**law, rel=0.02)
    factor = ch.arrhenius(350.0, s)
    hot = run("retention", retention_temperature_k=350.0,
              retention_times_s=tuple(np.array(s.retention_times_s) / factor))
    assert hot["window"] == pytest.approx(f["window"], rel=1e-6)
    assert hot["retention_time_s"] == pytest.approx(f["retention_time_s"] / factor, rel=1e-6)


def test_endurance_window_closes_as_the_law_says():
    s = ch.default_settings("vteam", endurance_cycles=tuple(np.logspace(0, 8, 17)))
    f = run("endurance", settings=s)
    assert f["r_on_ohm"][0] == pytest.approx(VT.ron, rel=0.01) and f["r_off_ohm"][0] == pytest.approx(VT.roff, rel=0.01)
    h0 = 0.5 * np.log(VT.roff / VT.ron)
    law = s.endurance_onset_cycles * ((2 * h0 / np.log(s.window_criterion)) ** (1 / s.endurance_kappa) - 1)
    assert f["cycles_to_failure"] == pytest.approx(law, rel=0.05)
    with pytest.raises(ValueError, match="Yakopcic has .'a1', 'a2'., which scale both states alike"):
        run("endurance", "yakopcic")


def test_cli_writes_the_dataset_and_its_figure(tmp_path, capsys):
    out = tmp_path / "loop.h5"
    args = ["characterize", "loop", "--model", "yakopcic", "--param", "vp=0.2", "--setting", "loop_cycles=1",
            "--out", str(out)]
    assert main(args) == 0
    points = read_points(out)
    assert points["inputs/protocol"][0] == "loop" and points["inputs/params/vp"][0] == 0.2
    assert 0.2 < points["outputs/figures/v_set_v"][0] < 0.35
    assert points["outputs/waveforms/current_a"].shape[1] > 100
    assert points["provenance/ngspice_version"][0]
    assert (tmp_path / "loop-loop.png").stat().st_size > 1000
    assert main(args) == 0 and "already holds" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [["--param", "vp=1\n.control"], ["--param", "shell=1"], ["--setting", "sweep_v=-1"],
                                 ["--setting", "bogus=1"], ["--model", "nope"]])
def test_cli_refuses_bad_input_before_writing(tmp_path, bad):
    out = tmp_path / "x.h5"
    args = ["characterize", "loop", "--model", "yakopcic", "--out", str(out)]
    if bad[0] == "--model":
        args[3] = bad[1]
    else:
        args += bad
    assert main(args) == 2
    assert not out.exists()


def test_stanford_pku_temperature_steps_its_own_t0():
    """The model has its own temperature (t0, Arrhenius rates, Joule heating): the protocol sets
    t0 and applies no law of its own. V_set and |V_reset| fall as it warms, as measured on the
    model directly (±2 V, 1 µs loop from the programmed HRS x = 0.95: 1.776/1.687/1.534 V,
    −1.516/−1.458/−1.339 V)."""
    settings = {"temperatures_k": (250.0, 300.0, 400.0), "loop_cycles": 1}
    res = ch.characterize("temperature", "stanford_pku", **settings)
    f = res.figures
    assert f["v_set_v"] == pytest.approx([1.776, 1.687, 1.534], abs=0.01)
    assert f["v_reset_v"] == pytest.approx([-1.516, -1.458, -1.339], abs=0.01)
    assert "rate_factor" not in f and "t0" in res.provenance["laws"]["temperature"]
    assert f["on_off_ratio"] == pytest.approx(np.exp((1.7e-9 - 0.2e-9) * (1 - 2 * 1e-4) / 0.25e-9), rel=0.01)
    twin = run("temperature", "stanford_pku", engine="numpy", **settings)
    for name in ("v_set_v", "v_reset_v", "r_on_ohm", "r_off_ohm"):
        assert twin[name] == pytest.approx(f[name], rel=0.005), name


def test_stanford_pku_runs_the_protocols_at_its_own_scales():
    loop = run("loop", "stanford_pku", loop_cycles=1)
    assert loop["set_polarity"] == 1 and loop["on_off_ratio"] > 100
    pulse = run("pulse", "stanford_pku", pulse_set_v=(1.6, 1.8), pulse_reset_v=(1.3,), pulse_widths_s=(1e-7,))
    assert 1e-9 < pulse["t_switch_set_s"][1] < pulse["t_switch_set_s"][0] < 1e-7  # faster at higher voltage
    assert pulse["r_after_reset_ohm"][0, 0] > 10 * pulse["r_lrs_start_ohm"]
