"""Neural-network mapping onto crossbar tiles: quantization, tiling, converters, engines, energy."""
import numpy as np
import pytest

from circuitsim import nn
from circuitsim.devices import SinhSelector
from circuitsim.spice.worker import SpiceWorker

FINE = {"levels": 4097, "dac_bits": 16, "adc_bits": 20}  # converters and levels fine enough to vanish


@pytest.fixture(scope="module")
def digits():
    return nn.load_digits_split()


@pytest.fixture(scope="module")
def net(digits):
    return nn.train_mlp(digits, hidden=16)


def test_training_gives_a_useful_classifier(net, digits):
    assert [w.shape for w in net.weights] == [(64, 16), (16, 10)]
    assert net.input_scale[0] == 1.0 and net.input_scale[1] > 0
    assert nn.accuracy(net.predict(digits.x_test), digits.y_test) > 0.9


def test_quantize_pair_uses_levels_and_is_differential():
    hw = nn.Hardware(g_min_s=1e-6, g_max_s=11e-6, levels=11)
    w = np.array([[-1.0, -0.5, 0.0, 0.26, 1.0]])
    g_pos, g_neg = nn.quantize_pair(w, 1.0, hw)
    levels = 1e-6 + 1e-6 * np.arange(11)
    assert np.all(np.isclose(g_pos[..., None], levels).any(-1)) and np.all(np.isclose(g_neg[..., None], levels).any(-1))
    np.testing.assert_allclose(g_pos - g_neg, [[-10e-6, -5e-6, 0.0, 3e-6, 10e-6]], atol=1e-18)
    assert np.all(np.minimum(g_pos, g_neg) == 1e-6)  # one side of every pair sits at g_min


def test_tiles_cover_every_weight_once(net, digits):
    hw = nn.Hardware(tile_rows=24, tile_cols=10)
    mapped = nn.map_network(net, hw, digits.x_train)
    for layer, w in zip(mapped.layers, net.weights):
        hits = np.zeros(w.shape, dtype=int)
        for tile in layer.tiles:
            rows, cols = tile.crossbar.shape
            assert rows <= 24 and cols <= 10 and cols % 2 == 0
            hits[tile.inputs, tile.outputs] += 1
        assert np.all(hits == 1)
    assert mapped.macs == sum(w.size for w in net.weights)


@pytest.mark.parametrize("tile", [8, 32, 64])
def test_fine_ideal_crossbar_reproduces_float_logits(net, digits, tile):
    """Scales, differential pairs and digital partial sums are right for any tile size."""
    x = digits.x_test[:50]
    mapped = nn.map_network(net, nn.Hardware(tile_rows=tile, tile_cols=tile, **FINE), digits.x_train)
    logits = nn.infer(mapped, x).logits
    ref = net.activations(x)[-1]
    assert np.abs(logits - ref).max() < 2e-3 * np.abs(ref).max()


def test_coarse_converters_cost_accuracy(net, digits):
    x, y = digits.x_test, digits.y_test
    acc = nn.accuracy_sweep(net, [nn.Hardware(adc_bits=b) for b in (2, 8)], x, y, digits.x_train, nn.ideal_backend)
    assert acc[1] > 0.9 and acc[0] < acc[1] - 0.05


def test_dac_and_adc():
    hw = nn.Hardware(dac_bits=2, v_read=0.3)
    np.testing.assert_allclose(nn.dac(np.array([-1.0, 0.0, 0.34, 0.5, 2.0]), 1.0, hw), [0, 0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(nn.adc(np.array([-5.0, -0.4, 0.0, 0.2, 0.4, 3.0]), 1.0, 3),
                               [-1, -1 / 3, 0, 1 / 3, 1 / 3, 1])


def test_device_spread_is_seeded(net, digits):
    def conductances(**kw):
        mapped = nn.map_network(net, nn.Hardware(**kw), digits.x_train[:10])
        return mapped.layers[0].tiles[0].crossbar.conductance

    base = conductances()
    np.testing.assert_array_equal(conductances(sigma_d2d=0.1, seed=3), conductances(sigma_d2d=0.1, seed=3))
    assert not np.array_equal(conductances(sigma_d2d=0.1, seed=3), conductances(sigma_d2d=0.1, seed=4))
    spread = np.log(conductances(sigma_d2d=0.1, seed=3) / base)
    assert 0.08 < spread.std() < 0.12


def test_numpy_engine_without_parasitics_equals_ideal(net, digits):
    mapped = nn.map_network(net, nn.Hardware(tile_rows=16, tile_cols=16), digits.x_train)
    x = digits.x_test[:20]
    ideal, exact = nn.infer(mapped, x), nn.infer(mapped, x, nn.engine_backend("numpy"))
    np.testing.assert_allclose(exact.logits, ideal.logits, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(exact.array_energy_j, ideal.array_energy_j, rtol=1e-9)


def test_wires_and_selector_change_the_currents(net, digits):
    hw = nn.Hardware(tile_rows=16, tile_cols=16, r_wire=20.0, selector=SinhSelector(i0=1e-5, v0=0.05))
    mapped = nn.map_network(net, hw, digits.x_train)
    x = digits.x_test[:3]
    ideal, exact = nn.infer(mapped, x), nn.infer(mapped, x, nn.engine_backend("numpy"))
    assert np.all(exact.array_energy_j < ideal.array_energy_j)  # IR drop and selector take voltage
    assert not np.allclose(exact.logits, ideal.logits, rtol=1e-3)


def test_spice_spot_check_agrees_with_numpy(net, digits):
    hw = nn.Hardware(tile_rows=8, tile_cols=8, r_wire=2.0, selector=SinhSelector(i0=1e-5, v0=0.05), sigma_d2d=0.1)
    mapped = nn.map_network(net, hw, digits.x_train)
    with SpiceWorker(timeout_s=60) as worker:
        spot = nn.spice_spot_check(mapped, digits.x_test[:3], worker)
    assert spot.tile_shape == (8, 8) and spot.cell_type == "1S1R"
    assert spot.spice_a.shape == (3, 8) and np.abs(spot.numpy_a).max() > 1e-6
    assert spot.max_rel_diff < 1e-6


def test_energy_per_mac_from_circuit_power(net, digits):
    hw = nn.Hardware(tile_rows=16, tile_cols=16, adc_bits=6, dac_bits=4)
    mapped = nn.map_network(net, hw, digits.x_train)
    run = nn.infer(mapped, digits.x_test[:10])
    model = nn.ConverterEnergy()
    report = nn.energy_per_mac(mapped, run, model)
    assert report.array_fj == pytest.approx(run.array_energy_j.mean() / mapped.macs * 1e15)
    n_adc = sum(t.crossbar.shape[1] // 2 for layer in mapped.layers for t in layer.tiles)
    assert report.adc_fj == pytest.approx(n_adc * model.adc_fom_j * 2**6 / mapped.macs * 1e15)
    assert report.total_fj == pytest.approx(report.array_fj + report.adc_fj + report.dac_fj)
    assert 0 < report.dac_fj and 0 < report.array_fj
    assert report.digital["int8 MAC, 45 nm (Horowitz 2014)"] == 230.0


@pytest.mark.parametrize("bad, match", [
    ({"tile_cols": 7}, "even"), ({"g_min_s": 2e-5, "g_max_s": 1e-5}, "g_min_s < g_max_s"),
    ({"levels": 1}, "levels"), ({"r_wire": -1.0}, "non-negative"), ({"adc_bits": 2.5}, "adc_bits"),
    ({"v_read": float("nan")}, "finite"),
])
def test_bad_hardware_is_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        nn.Hardware(**bad)


def test_bit_sliced_weights_recombine_to_the_float_logits(net, digits):
    """Two base-65 slices (4225 codes) per weight, each on its own column pair, recombined digitally."""
    x = digits.x_test[:50]
    hw = nn.Hardware(tile_rows=32, tile_cols=32, levels=65, slices=2, dac_bits=16, adc_bits=20)
    mapped = nn.map_network(net, hw, digits.x_train)
    assert mapped.macs == sum(w.size for w in net.weights)
    assert all(t.crossbar.shape[1] % 4 == 0 for layer in mapped.layers for t in layer.tiles)
    ref = net.activations(x)[-1]
    err = np.abs(nn.infer(mapped, x).logits - ref).max() / np.abs(ref).max()
    assert err < 2e-3, err


def test_bit_slicing_beats_one_coarse_cell_per_weight(net, digits):
    x = digits.x_test[:100]
    ref = net.activations(x)[-1]
    errors = {}
    for slices in (1, 2):
        hw = nn.Hardware(levels=4, slices=slices, dac_bits=16, adc_bits=20)
        errors[slices] = np.abs(nn.infer(nn.map_network(net, hw, digits.x_train), x).logits - ref).mean()
    assert errors[2] < 0.3 * errors[1], errors
