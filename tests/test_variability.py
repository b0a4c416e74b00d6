"""Seeded variability: same seed same numbers, the requested statistics, c2c through SPICE."""
import numpy as np
import pytest

from circuitsim.devices import VTEAM, LinearIonDriftJoglekar, Yakopcic
from circuitsim.variability import (
    cycle_to_cycle,
    device_to_device,
    flicker_noise,
    switching_cycles,
    telegraph_noise,
)


def _params(devices, name):
    return np.array([getattr(d, name) for d in np.ravel(devices)])


def test_device_to_device_is_seeded_lognormal_on_the_bounds():
    base = VTEAM()
    a = device_to_device(base, (40, 50), {"ron": 0.1, "roff": 0.3}, seed=7)
    b = device_to_device(base, (40, 50), {"ron": 0.1, "roff": 0.3}, seed=7)
    c = device_to_device(base, (40, 50), {"ron": 0.1, "roff": 0.3}, seed=8)
    assert a.shape == (40, 50)
    np.testing.assert_array_equal(_params(a, "roff"), _params(b, "roff"))
    assert not np.array_equal(_params(a, "roff"), _params(c, "roff"))
    for name, sigma in (("ron", 0.1), ("roff", 0.3)):
        logs = np.log(_params(a, name) / getattr(base, name))
        assert np.std(logs) == pytest.approx(sigma, rel=0.1) and abs(np.mean(logs)) < 0.05
    assert np.all(_params(a, "kon") == base.kon)  # switching rates untouched


def test_cycle_to_cycle_spreads_the_switching_rates_only():
    cycles = cycle_to_cycle(LinearIonDriftJoglekar(), 500, 0.2, seed=3)
    logs = np.log(_params(cycles, "uv") / LinearIonDriftJoglekar().uv)
    assert np.std(logs) == pytest.approx(0.2, rel=0.15)
    assert np.all(_params(cycles, "roff") == LinearIonDriftJoglekar().roff)
    np.testing.assert_array_equal(_params(cycles, "uv"), _params(cycle_to_cycle(LinearIonDriftJoglekar(), 500, 0.2,
                                                                                seed=3), "uv"))


def test_switching_cycles_in_spice_are_reproducible_and_vary():
    pulses = [1.0, -1.0, 1.0, -1.0]
    first = switching_cycles(Yakopcic(), pulses, 1e-4, 0.3, seed=11)
    again = switching_cycles(Yakopcic(), pulses, 1e-4, 0.3, seed=11)
    other = switching_cycles(Yakopcic(), pulses, 1e-4, 0.3, seed=12)
    quiet = switching_cycles(Yakopcic(), pulses, 1e-4, 0.0, seed=11)
    quiet_other_seed = switching_cycles(Yakopcic(), pulses, 1e-4, 0.0, seed=99)
    np.testing.assert_array_equal(first, again)
    assert np.max(np.abs(first - other)) > 1e-3
    np.testing.assert_array_equal(quiet, quiet_other_seed)  # without noise the seed does not matter
    assert np.max(np.abs(first - quiet)) > 1e-3
    np.testing.assert_allclose(switching_cycles(Yakopcic(), pulses, 1e-4, 0.3, seed=11, engine="numpy"), first,
                               atol=1e-3)


def test_flicker_noise_has_the_requested_psd():
    n, dt, q, i = 4096, 1e-6, 1e-4, 2e-6
    runs = np.array([flicker_noise(i, n, dt, q, seed=s) for s in range(200)])
    np.testing.assert_array_equal(runs[0], flicker_noise(i, n, dt, q, seed=0))
    f = np.fft.rfftfreq(n, dt)[1:]
    expected_var = np.sum(q * i**2 / f) * (f[1] - f[0])
    assert runs.var(axis=1).mean() == pytest.approx(expected_var, rel=0.1)
    psd = (np.abs(np.fft.rfft(runs - i, axis=1)) ** 2).mean(axis=0)[1:]
    assert np.polyfit(np.log(f), np.log(psd), 1)[0] == pytest.approx(-1.0, abs=0.05)


def test_telegraph_noise_two_levels_with_the_requested_dwell_ratio():
    r = telegraph_noise(1e-6, 200_000, 1e-6, 0.1, tau_low_s=1e-4, tau_high_s=3e-4, seed=5)
    np.testing.assert_array_equal(r, telegraph_noise(1e-6, 200_000, 1e-6, 0.1, 1e-4, 3e-4, seed=5))
    assert set(np.round(np.unique(r) / 1e-6, 12)) == {1.0, 1.1}
    assert np.mean(r > 1.05e-6) == pytest.approx(0.75, abs=0.05)


@pytest.mark.parametrize("call, match", [
    (lambda: device_to_device(VTEAM(), (2, 2), {"rx": 0.1}, seed=0), "no parameters"),
    (lambda: device_to_device(VTEAM(), (2, 2), -0.1, seed=0), "sigma_ln"),
    (lambda: flicker_noise(1e-6, 1, 1e-6, 1e-4, seed=0), "n_samples"),
    (lambda: flicker_noise(1e-6, 10, 0.0, 1e-4, seed=0), "dt_s"),
])
def test_bad_variability_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
