"""Neural-network inference on ReRAM crossbar tiles, from float weights down to the exact circuit.

A small MLP is trained on scikit-learn's bundled 8×8 digits (no download). Each layer's
weight matrix W (inputs × outputs) is cut into tiles of `tile_rows` inputs ×
`tile_cols/(2·slices)` outputs; a tile is one physical crossbar whose column pairs hold the
differential conductances (G⁺, G⁻) of each output, each on one of `levels` equally spaced
values between g_min_s and g_max_s. With bit slicing (slices > 1) a weight's code in
±(levels^slices − 1) is split into `slices` base-`levels` digits, each on its own column pair
(output k, slice s at pair k·slices + s); the slices' digitised currents are recombined
digitally with weights levels^s. A DAC turns each layer input into a row voltage in
[0, v_read]; an ADC digitises each tile's differential column current I⁺ − I⁻; partial
sums of the tiles are added digitally, then the bias and the ReLU. Biases stay digital.

The same mapped network runs on several backends: "ideal" (I = V·G, no parasitics) or
any engine of circuitsim.simulate ("numpy", "spice", "surrogate"), which see the wire
resistance, the selector and the device-to-device spread of each tile's Crossbar.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.devices.selectors import SinhSelector
from circuitsim.engines import simulate
from circuitsim.validate import finite_array, positive_scalar

# Digital reference energies per multiply-accumulate [fJ] at 45 nm (M. Horowitz, "Computing's
# energy problem", ISSCC 2014): 8-bit integer multiply 0.2 pJ + add 0.03 pJ; 32-bit float
# multiply 3.7 pJ + add 0.9 pJ. Arithmetic only: fetching the weight from SRAM costs more.
DIGITAL_MAC_FJ = {"int8 MAC, 45 nm (Horowitz 2014)": 230.0, "fp32 MAC, 45 nm (Horowitz 2014)": 4600.0}


@dataclass(frozen=True, eq=False)
class Digits:
    """The 8×8 digits, pixels scaled to [0, 1], split into train and test sets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> Digits:
    """scikit-learn's bundled digits (1797 images), stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    parts = train_test_split(data.data / 16.0, data.target, test_size=test_fraction, random_state=seed,
                             stratify=data.target)
    return Digits(parts[0], parts[2], parts[1], parts[3])


@dataclass(frozen=True, eq=False)
class Network:
    """A ReLU MLP: weights[k] has shape (inputs, outputs); input_scale[k] is the full scale of
    layer k's input (the DAC's top code), taken from the training data."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    input_scale: tuple[float, ...]

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """The input of every layer, then the logits."""
        out = [np.asarray(x, dtype=float)]
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            y = out[-1] @ w + b
            out.append(y if k == len(self.weights) - 1 else np.maximum(y, 0.0))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.activations(x)[-1].argmax(axis=1)


def train_mlp(data: Digits, hidden: int = 32, seed: int = 0) -> Network:
    """Train a one-hidden-layer ReLU MLP with scikit-learn (about 2 s)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an unconverged net is a bug here
        model.fit(data.x_train, data.y_train)
    net = Network(tuple(model.coefs_), tuple(model.intercepts_), ())
    scales = tuple(float(a.max()) for a in net.activations(data.x_train)[:-1])
    return replace(net, input_scale=scales)


@dataclass(frozen=True)
class Hardware:
    """How a network is put on crossbars.

    g_min_s, g_max_s: conductance range of a cell [S]; levels: programmable conductance
    levels per cell (≥ 2); tile_rows × tile_cols: physical tile size (tile_cols even, one
    differential column pair per output); v_read: DAC full scale [V]; dac_bits, adc_bits:
    converter resolutions; r_wire: wire segment resistance of rows and columns [Ω];
    selector: optional selector in series with every cell; sigma_d2d: lognormal
    device-to-device spread of the programmed conductances (σ of ln G); seed: seeds that
    spread; t_read_s: duration of one analog read [s] (for energy); slices: cells (column
    pairs) per weight, bit slicing.
    """

    g_min_s: float = 2e-6
    g_max_s: float = 60e-6
    levels: int = 16
    tile_rows: int = 32
    tile_cols: int = 32
    v_read: float = 0.2
    dac_bits: int = 6
    adc_bits: int = 8
    r_wire: float = 0.0
    selector: SinhSelector | None = None
    sigma_d2d: float = 0.0
    seed: int = 0
    t_read_s: float = 10e-9
    slices: int = 1

    def __post_init__(self):
        for name in ("g_max_s", "v_read", "t_read_s"):
            positive_scalar(f"Hardware.{name}", getattr(self, name))
        for name in ("g_min_s", "r_wire", "sigma_d2d"):
            finite_array(f"Hardware.{name}", getattr(self, name), shape=(), nonnegative=True)
        if not self.g_min_s < self.g_max_s:
            raise ValueError(f"Hardware needs g_min_s < g_max_s, got {self.g_min_s:g} >= {self.g_max_s:g}")
        for name, low in (("levels", 2), ("tile_rows", 1), ("tile_cols", 2), ("dac_bits", 1), ("adc_bits", 2),
                          ("slices", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Hardware.{name} must be an integer >= {low}, got {value!r}")
        if self.tile_cols % (2 * self.slices):
            raise ValueError(f"Hardware.tile_cols must be even (differential column pairs) and a multiple of "
                             f"2·slices, got {self.tile_cols} for {self.slices} slices")
        if self.selector is not None and not isinstance(self.selector, SinhSelector):
            raise TypeError(f"Hardware.selector must be a SinhSelector, got {type(self.selector).__name__}")

    def replace(self, **changes) -> Hardware:
        return replace(self, **changes)

    @property
    def top_code(self) -> int:
        """Largest |weight code|: levels^slices − 1."""
        return self.levels**self.slices - 1

    @property
    def g_step_s(self) -> float:
        """Conductance between neighbouring levels [S]."""
        return (self.g_max_s - self.g_min_s) / (self.levels - 1)


@dataclass(frozen=True, eq=False)
class Tile:
    """One crossbar: rows driven by layer inputs `inputs`, column pairs giving outputs `outputs`."""

    crossbar: Crossbar
    inputs: slice
    outputs: slice


@dataclass(frozen=True, eq=False)
class MappedLayer:
    """A layer on tiles. units_per_amp converts a differential current [A] into the layer's
    pre-activation units; adc_full_scale_a is the ADC's ± full scale [A], set so that the
    largest tile partial sum of the float network on the calibration inputs just fits."""

    tiles: tuple[Tile, ...]
    bias: np.ndarray
    input_scale: float
    units_per_amp: float
    adc_full_scale_a: float


@dataclass(frozen=True, eq=False)
class MappedNetwork:
    layers: tuple[MappedLayer, ...]
    hardware: Hardware

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference: one per weight."""
        cells_per_weight = 2 * self.hardware.slices
        return sum(t.crossbar.shape[0] * t.crossbar.shape[1] // cells_per_weight
                   for layer in self.layers for t in layer.tiles)


def quantize_pair(w: np.ndarray, w_max: float, hw: Hardware) -> tuple[np.ndarray, np.ndarray]:
    """Differential conductances (G⁺, G⁻) [S] of weights w, each snapped to one of hw.levels values;
    with bit slicing, shape w.shape + (slices,): slice s holds base-levels digit s of the code."""
    codes = np.clip(np.rint(w / w_max * hw.top_code), -hw.top_code, hw.top_code)
    if hw.slices > 1:
        digits = (np.abs(codes)[..., None] // hw.levels ** np.arange(hw.slices)) % hw.levels
        codes = np.sign(codes)[..., None] * digits
    return hw.g_min_s + hw.g_step_s * np.maximum(codes, 0), hw.g_min_s + hw.g_step_s * np.maximum(-codes, 0)


def _tile_conductance(w: np.ndarray, w_max: float, hw: Hardware) -> np.ndarray:
    """(inputs, 2·slices·outputs) conductances with columns G⁺₀, G⁻₀, G⁺₁, G⁻₁, ... (pair k·slices + s
    is output k's slice s)."""
    g_pos, g_neg = quantize_pair(w, w_max, hw)
    return np.stack([g_pos, g_neg], axis=-1).reshape(w.shape[0], 2 * hw.slices * w.shape[1])


def _tile_slices(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _largest_partial(a: np.ndarray, w: np.ndarray, w_max: float, hw: Hardware) -> float:
    """Largest |partial sum| one column pair of a tile carries for inputs a, in weight units: the float
    a @ w, or with bit slicing the largest of the slices' digit sums (each slice has its own pairs)."""
    if hw.slices == 1:
        return float(np.abs(a @ w).max())
    g_pos, g_neg = quantize_pair(w, w_max, hw)
    digits = (g_pos - g_neg) / hw.g_step_s  # (inputs, outputs, slices) signed digits
    return float(np.abs(np.einsum("bi,ios->bos", a, digits)).max()) * w_max / hw.top_code


def map_network(net: Network, hw: Hardware, x_calibration: np.ndarray) -> MappedNetwork:
    """Put every layer of `net` on tiles of `hw`; ADC ranges come from x_calibration (training inputs).

    The last tile along each axis holds the remainder (a smaller crossbar). Device-to-device
    spread multiplies each programmed conductance by exp(sigma_d2d·z), z ~ N(0, 1) drawn from
    one generator seeded with hw.seed, tile by tile.
    """
    rng = np.random.default_rng(hw.seed)
    acts = net.activations(x_calibration)
    layers = []
    for w, b, scale, a in zip(net.weights, net.biases, net.input_scale, acts):
        w_max = float(np.abs(w).max())
        units_per_amp = scale * w_max / (hw.v_read * hw.g_step_s * hw.top_code)
        tiles, largest_partial = [], 0.0
        for rows in _tile_slices(w.shape[0], hw.tile_rows):
            for outs in _tile_slices(w.shape[1], hw.tile_cols // (2 * hw.slices)):
                g = _tile_conductance(w[rows, outs], w_max, hw)
                if hw.sigma_d2d > 0:
                    g = g * np.exp(hw.sigma_d2d * rng.standard_normal(g.shape))
                xb = Crossbar(conductance=g, r_row=hw.r_wire, r_col=hw.r_wire, selector=hw.selector)
                tiles.append(Tile(xb, rows, outs))
                largest_partial = max(largest_partial, _largest_partial(a[:, rows], w[rows, outs], w_max, hw))
        layers.append(MappedLayer(tuple(tiles), b, scale, units_per_amp, largest_partial / units_per_amp))
    return MappedNetwork(tuple(layers), hw)


def dac(a: np.ndarray, full_scale: float, hw: Hardware) -> np.ndarray:
    """Row voltages [V]: a/full_scale clipped to [0, 1], rounded to dac_bits, times v_read."""
    top = 2**hw.dac_bits - 1
    return np.rint(np.clip(a / full_scale, 0.0, 1.0) * top) / top * hw.v_read


def adc(i: np.ndarray, full_scale_a: float, bits: int) -> np.ndarray:
    """Signed mid-tread ADC: currents [A] clipped to ±full_scale_a, rounded to 2^(bits−1) − 1 steps each side."""
    top = 2 ** (bits - 1) - 1
    return np.clip(np.rint(i / full_scale_a * top), -top, top) / top * full_scale_a


# A backend reads one tile: (crossbar, v_rows (batch, rows)) -> (column currents (batch, cols) [A],
# power (batch,) [W] delivered by the tile's sources).
Backend = Callable[[Crossbar, np.ndarray], tuple[np.ndarray, np.ndarray]]


def ideal_backend(xb: Crossbar, v_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """I = V·G: no wires, no selector (the conductances, including any spread, are used as they are)."""
    g = xb.conductance
    return v_rows @ g, (v_rows**2) @ g.sum(axis=1)


def engine_backend(engine: str, **simulate_kwargs) -> Backend:
    """A backend running circuitsim.simulate(xb, v_rows, engine=engine, **simulate_kwargs)."""
    def run(xb: Crossbar, v_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = simulate(xb, v_rows, engine=engine, **simulate_kwargs)
        return res.column_currents, res.power
    return run


@dataclass(frozen=True, eq=False)
class Inference:
    """logits (batch, classes); array_energy_j (batch,): energy of all tile reads of one
    inference [J]; dac_volts: every row voltage applied, per inference (batch, n_dac)."""

    logits: np.ndarray
    array_energy_j: np.ndarray
    dac_volts: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


def infer(mapped: MappedNetwork, x: np.ndarray, backend: Backend = ideal_backend) -> Inference:
    """Run inputs x (batch, features) through the mapped network on `backend`."""
    hw = mapped.hardware
    a = np.asarray(x, dtype=float)
    energy = np.zeros(a.shape[0])
    volts = []
    for k, layer in enumerate(mapped.layers):
        v = dac(a, layer.input_scale, hw)
        y = np.zeros((a.shape[0], len(layer.bias)))
        for tile in layer.tiles:
            v_tile = v[:, tile.inputs]
            currents, power = backend(tile.crossbar, v_tile)
            differential = currents[:, 0::2] - currents[:, 1::2]
            digitised = adc(differential, layer.adc_full_scale_a, hw.adc_bits).reshape(len(a), -1, hw.slices)
            y[:, tile.outputs] += digitised @ (hw.levels ** np.arange(hw.slices)) * layer.units_per_amp
            energy += power * hw.t_read_s
            volts.append(v_tile)
        y += layer.bias
        a = y if k == len(mapped.layers) - 1 else np.maximum(y, 0.0)
    return Inference(a, energy, np.concatenate(volts, axis=1))


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predictions == labels))


@dataclass(frozen=True)
class ConverterEnergy:
    """A documented first-order model of the converters' energy (assumptions, not measurements).

    ADC: Walden figure of merit, E = adc_fom_j · 2^bits per conversion; 5 fJ per conversion
    step is typical of recent SAR ADCs (B. Murmann, "ADC Performance Survey 1997-2024").
    DAC: a capacitive DAC that charges its binary-weighted array and the row line to the
    row voltage v, E = (dac_unit_cap_f · 2^bits + wire_cap_per_cell_f · tile columns) · v²
    per conversion (a supply delivers C·v² to charge and discharge C once).
    """

    adc_fom_j: float = 5e-15
    dac_unit_cap_f: float = 0.5e-15
    wire_cap_per_cell_f: float = 0.05e-15


@dataclass(frozen=True)
class EnergyReport:
    """Energies per MAC [fJ], averaged over the inputs: the array alone, the ADCs, the DACs,
    and their sum; digital: reference figures per MAC [fJ]."""

    array_fj: float
    adc_fj: float
    dac_fj: float
    total_fj: float
    digital: dict = field(default_factory=lambda: dict(DIGITAL_MAC_FJ))


def energy_per_mac(mapped: MappedNetwork, run: Inference, model: ConverterEnergy = ConverterEnergy()) -> EnergyReport:
    """Energy per MAC [fJ] from the circuit's own power (run.array_energy_j) plus converters."""
    hw = mapped.hardware
    tiles = [t for layer in mapped.layers for t in layer.tiles]
    adc_j = sum(t.crossbar.shape[1] // 2 for t in tiles) * model.adc_fom_j * 2**hw.adc_bits  # one per column pair
    row_cap_f = np.concatenate([np.full(t.crossbar.shape[0], model.dac_unit_cap_f * 2**hw.dac_bits
                                        + model.wire_cap_per_cell_f * t.crossbar.shape[1]) for t in tiles])
    dac_j = float(np.mean((run.dac_volts**2) @ row_cap_f))
    array_j = float(np.mean(run.array_energy_j))
    per_mac_fj = 1e15 / mapped.macs
    return EnergyReport(array_j * per_mac_fj, adc_j * per_mac_fj, dac_j * per_mac_fj,
                        (array_j + adc_j + dac_j) * per_mac_fj)


def accuracy_sweep(net: Network, variants: list[Hardware], x: np.ndarray, labels: np.ndarray,
                   x_calibration: np.ndarray, backend: Backend) -> np.ndarray:
    """Test accuracy of `net` mapped onto each Hardware variant, all read with `backend`."""
    return np.array([accuracy(infer(map_network(net, hw, x_calibration), x, backend).predictions, labels)
                     for hw in variants])


@dataclass(frozen=True, eq=False)
class SpotCheck:
    """One tile read by ngspice and by the numpy engine on the same DAC voltages.

    spice_a, numpy_a: column currents (inputs, cols) [A]; max_rel_diff: largest |difference|
    relative to the largest |current|."""

    tile_shape: tuple[int, int]
    cell_type: str
    spice_a: np.ndarray
    numpy_a: np.ndarray

    @property
    def max_rel_diff(self) -> float:
        return float(np.abs(self.spice_a - self.numpy_a).max() / np.abs(self.numpy_a).max())


def spice_spot_check(mapped: MappedNetwork, x: np.ndarray, worker=None) -> SpotCheck:
    """Read the first tile of the first layer with engine="spice" and engine="numpy" for inputs x."""
    layer, tile = mapped.layers[0], mapped.layers[0].tiles[0]
    v = dac(np.asarray(x, dtype=float), layer.input_scale, mapped.hardware)[:, tile.inputs]
    spice_a, _ = engine_backend("spice", worker=worker)(tile.crossbar, v)
    numpy_a, _ = engine_backend("numpy")(tile.crossbar, v)
    return SpotCheck(tile.crossbar.shape, tile.crossbar.cell_type, spice_a, numpy_a)
