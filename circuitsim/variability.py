"""Seeded variability: device-to-device spread, cycle-to-cycle switching noise, read noise.

Every function takes a `seed` (anything numpy.random.default_rng accepts) and draws from
its own generator, so the same seed gives the same numbers (MODELS.md, "Variability").
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from circuitsim.devices.memristors import StateDevice
from circuitsim.transient import pulse_train, transient
from circuitsim.validate import finite_array, positive_scalar


def _sigmas(device: StateDevice, sigma_ln, names: tuple[str, ...]) -> dict[str, float]:
    """{parameter: σ of ln(parameter)} from one σ for all `names` or an explicit dict."""
    table = dict.fromkeys(names, sigma_ln) if not isinstance(sigma_ln, dict) else dict(sigma_ln)
    unknown = set(table) - set(device.spice_params())
    if unknown:
        raise ValueError(f"{type(device).__name__} has no parameters {sorted(unknown)}")
    for name, sigma in table.items():
        if not (np.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma_ln of {name} must be finite and >= 0, got {sigma!r}")
    return table


def _lognormal_copies(device: StateDevice, count: int, table: dict[str, float], seed) -> list[StateDevice]:
    rng = np.random.default_rng(seed)
    factors = {name: np.exp(sigma * rng.standard_normal(count)) for name, sigma in table.items()}
    return [replace(device, **{name: getattr(device, name) * f[k] for name, f in factors.items()})
            for k in range(count)]


def device_to_device(device: StateDevice, shape: tuple[int, ...], sigma_ln=0.1, *, seed) -> np.ndarray:
    """An array of devices (object dtype, `shape`) whose level parameters (device.bound_params,
    e.g. ron and roff) are lognormal around the device's: p·exp(σ·N(0, 1)).

    sigma_ln: one σ for every bound parameter, or {parameter: σ} (e.g. a larger σ for roff,
    as HRS spreads more than LRS).
    """
    count = int(np.prod(shape))
    devices = _lognormal_copies(device, count, _sigmas(device, sigma_ln, device.bound_params), seed)
    out = np.empty(count, dtype=object)
    out[:] = devices
    return out.reshape(shape)


def cycle_to_cycle(device: StateDevice, n_cycles: int, sigma_ln=0.1, *, seed) -> list[StateDevice]:
    """One device per switching cycle, its rate parameters (device.rate_params) lognormal
    around the device's: the seeded noise of the state equation from cycle to cycle."""
    return _lognormal_copies(device, int(n_cycles), _sigmas(device, sigma_ln, device.rate_params), seed)


def switching_cycles(device: StateDevice, amplitudes_v, width_s: float, sigma_ln=0.1, *, seed,
                     engine: str = "spice", edge_s: float | None = None) -> np.ndarray:
    """States after each pulse of a train, each pulse switching with its own cycle's
    parameters (cycle_to_cycle); the state carries over from pulse to pulse."""
    amplitudes = finite_array("amplitudes_v", amplitudes_v).reshape(-1)
    edge = width_s / 100 if edge_s is None else edge_s
    x = device.x0
    states = []
    for amplitude, cycle_device in zip(amplitudes, cycle_to_cycle(device, len(amplitudes), sigma_ln, seed=seed)):
        res = transient(cycle_device.with_state(x), pulse_train([amplitude], width_s, width_s + 3 * edge, edge),
                        engine=engine)
        x = float(np.clip(res.state[-1], 0.0, 1.0))
        states.append(x)
    return np.array(states)


def flicker_noise(current_a, n_samples: int, dt_s: float, q: float, *, seed) -> np.ndarray:
    """Read-current samples (n_samples,) around current_a [A] with 1/f noise of relative PSD
    S_I(f)/I² = q/f [1/Hz] (one-sided), sampled every dt_s [s]. Pass a larger q for HRS."""
    current = float(finite_array("current_a", current_a, shape=()))
    dt = positive_scalar("dt_s", dt_s)
    q = float(finite_array("q", q, shape=(), nonnegative=True))
    if int(n_samples) < 2:
        raise ValueError("flicker_noise needs n_samples >= 2")
    n = int(n_samples)
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, dt)
    psd = np.zeros_like(f)
    psd[1:] = q * current**2 / f[1:]  # no DC component: the noise has zero mean
    # irfft of coefficients with variance N²·S·Δf/4 per real and imaginary part (each bin
    # also stands for its mirror) gives a signal whose variance is Σ S(f)·Δf
    scale = n * np.sqrt(psd / (n * dt) / 4)
    coeffs = scale * (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f)))
    if n % 2 == 0:
        coeffs[-1] = 2 * coeffs[-1].real  # the Nyquist bin is real and has no mirror
    return current + np.fft.irfft(coeffs, n)


def telegraph_noise(current_a, n_samples: int, dt_s: float, relative_step: float, tau_low_s: float,
                    tau_high_s: float, *, seed) -> np.ndarray:
    """Read-current samples with random telegraph noise: the current toggles between
    current_a and current_a·(1 + relative_step), with exponential dwell times of mean
    tau_low_s and tau_high_s [s], sampled every dt_s [s]."""
    current = float(finite_array("current_a", current_a, shape=()))
    dt, tau_low, tau_high = (positive_scalar(name, value) for name, value in
                             (("dt_s", dt_s), ("tau_low_s", tau_low_s), ("tau_high_s", tau_high_s)))
    step = float(finite_array("relative_step", relative_step, shape=()))
    rng = np.random.default_rng(seed)
    t_end = int(n_samples) * dt
    high = bool(rng.random() < tau_high / (tau_low + tau_high))  # start in the stationary distribution
    edges, levels, t = [0.0], [high], 0.0
    while t < t_end:
        t += rng.exponential(tau_high if high else tau_low)
        high = not high
        edges.append(t)
        levels.append(high)
    sample_t = np.arange(int(n_samples)) * dt
    state = np.array(levels)[np.searchsorted(edges, sample_t, side="right") - 1]
    return current * (1.0 + step * state)
