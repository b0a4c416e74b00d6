"""A neural network put on arrays by programming them: every tile written by write-verify, then
read at times after programming (relaxation, read noise), with and without drift compensation.

program_network writes each tile's target conductances (nn.map_network) into an array of
stateful devices with circuitsim.programming.program_array, then places the achieved read
conductances in the tiles. network_at reads those arrays t seconds later at a temperature
(drift.conductance_at) and optionally compensates drift as aihwkit does: a fixed set of
reference inputs is read at t = 0 and at t, and the outputs are rescaled by the ratio of their
L1 norms, per tile ("global") or per output column pair ("column"). Stuck cells can be
compensated in their differential pair (fault_compensation): the partner cell's target is moved
so that G⁺ − G⁻ keeps its value where the range allows.

Inference reads the programmed conductances as linear cells (nn's engines), at the verify's
read voltage.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from circuitsim import nn
from circuitsim.design import Crossbar
from circuitsim.devices.access import NmosAccess
from circuitsim.devices.memristors import StateDevice
from circuitsim.programming.drift import ReadNoise, RetentionLaw, conductance_at
from circuitsim.programming.faults import Faults, random_faults
from circuitsim.programming.pulses import CellModels
from circuitsim.programming.verify import ProgrammedArray, WriteVerify, conductance_range, program_array

COMPENSATIONS = (None, "global", "column")
REFERENCE_INPUTS = 16  # random binary reference vectors of the drift compensation
SCALE_LIMIT = 10.0  # a compensation factor is clipped to [1/SCALE_LIMIT, SCALE_LIMIT]


@dataclass(frozen=True, eq=False)
class ProgrammedTile:
    """One programmed tile: its array's wiring, fault map and ProgrammedArray (states, conductances)."""

    array: Crossbar
    faults: Faults | None
    result: ProgrammedArray


@dataclass(frozen=True, eq=False)
class ProgrammedNetwork:
    """mapped: the network with every tile's conductance replaced by the programmed one (t = 0);
    tiles: per layer, per tile; device: the cells' device; write_verify: the algorithm."""

    mapped: nn.MappedNetwork
    tiles: tuple[tuple[ProgrammedTile, ...], ...]
    device: StateDevice
    write_verify: WriteVerify
    wall_time_s: float

    def all_tiles(self) -> list[ProgrammedTile]:
        return [t for layer in self.tiles for t in layer]

    @property
    def summary(self) -> dict:
        """Totals over every tile: cells, pulses, energy [J], programming time [s] (tiles written one
        after another), failed and stuck cells, the largest |relative error| of converged cells."""
        results = [t.result for t in self.all_tiles()]
        errors = np.concatenate([np.abs(r.relative_error[r.converged]) for r in results])
        return {"tiles": len(results), "cells": int(sum(r.target_s.size for r in results)),
                "pulses": int(sum(r.pulses.sum() for r in results)),
                "pulse_events": int(sum(r.n_pulses for r in results)),
                "energy_j": float(sum(r.total_energy_j for r in results)),
                "time_s": float(sum(r.time_s for r in results)),
                "failed": int(sum(r.failed.sum() for r in results)), "stuck": int(sum(r.stuck.sum() for r in results)),
                "max_error_converged": float(errors.max(initial=0.0)), "wall_time_s": self.wall_time_s}

    def error_per_level(self) -> dict[float, np.ndarray]:
        """{target level [S]: relative errors of the converged cells programmed to it} (for histograms)."""
        targets = np.concatenate([t.result.target_s.ravel() for t in self.all_tiles()])
        errors = np.concatenate([t.result.relative_error.ravel() for t in self.all_tiles()])
        ok = np.concatenate([t.result.converged.ravel() for t in self.all_tiles()])
        levels = np.unique(np.round(targets, 12))
        return {float(g): errors[ok & np.isclose(targets, g, rtol=1e-9)] for g in levels}


def _compensate_stuck(target: np.ndarray, faults: Faults, g_stuck: np.ndarray, hw: nn.Hardware,
                      g_low: float, g_high: float) -> np.ndarray:
    """Targets with each stuck cell's pair partner moved so that G⁺ − G⁻ keeps its value (clipped to
    the device range [g_low, g_high])."""
    out = target.copy()
    pos, neg = slice(0, None, 2), slice(1, None, 2)
    diff = target[:, pos] - target[:, neg]
    stuck_p, stuck_n = faults.stuck[:, pos], faults.stuck[:, neg]
    new_neg = np.clip(g_stuck[:, pos] - diff, g_low, g_high)
    new_pos = np.clip(g_stuck[:, neg] + diff, g_low, g_high)
    out[:, neg] = np.where(stuck_p & ~stuck_n, new_neg, out[:, neg])
    out[:, pos] = np.where(stuck_n & ~stuck_p, new_pos, out[:, pos])
    return out


def program_network(mapped: nn.MappedNetwork, device: StateDevice, write_verify: WriteVerify, *,
                    transistor: NmosAccess | None = None, stuck_on_rate: float = 0.0, stuck_off_rate: float = 0.0,
                    fault_compensation: bool = False, seed: int = 0, progress=None) -> ProgrammedNetwork:
    """Program every tile of `mapped` into arrays of `device` (1T1R with `transistor`, else as the
    tile: 1R or its selector), wires of the tile's r_row/r_col. Stuck-at faults are drawn per tile
    (rates, seeded); fault_compensation moves the pair partners of stuck cells (module docstring).
    progress: callable(tiles_done, tiles_total)."""
    start = time.perf_counter()
    hw = mapped.hardware
    programmed_layers, tiles_out = [], []
    total = sum(len(layer.tiles) for layer in mapped.layers)
    done = 0
    for k, layer in enumerate(mapped.layers):
        new_tiles, records = [], []
        for n, tile in enumerate(layer.tiles):
            xb = tile.crossbar
            array = Crossbar(conductance=np.ones(xb.shape), r_row=xb.r_row, r_col=xb.r_col,
                             selector=None if transistor is not None else xb.selector, transistor=transistor)
            models = CellModels(device, xb.shape)
            g0, g1, on_end = conductance_range(models, write_verify.v_read)
            faults = None
            target = xb.conductance
            if stuck_on_rate or stuck_off_rate:
                faults = random_faults(xb.shape, stuck_on_rate, stuck_off_rate, seed=(seed, k, n))
                if fault_compensation:
                    g_stuck = models.read_conductance(faults.pin_states(models.initial_state, on_end),
                                                      write_verify.v_read)
                    target = _compensate_stuck(target, faults, g_stuck, hw, float(np.min(np.minimum(g0, g1))),
                                               float(np.max(np.maximum(g0, g1))))
            result = program_array(array, device, target, write_verify, faults=faults)
            new_tiles.append(dataclasses.replace(tile, crossbar=xb.replace(conductance=result.conductance_s)))
            records.append(ProgrammedTile(array, faults, result))
            done += 1
            if progress is not None:
                progress(done, total)
        programmed_layers.append(dataclasses.replace(layer, tiles=tuple(new_tiles)))
        tiles_out.append(tuple(records))
    programmed = dataclasses.replace(mapped, layers=tuple(programmed_layers))
    return ProgrammedNetwork(programmed, tuple(tiles_out), device, write_verify, time.perf_counter() - start)


def _reference_outputs(xb_g: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Differential outputs (vectors, pairs) of conductances xb_g for the reference inputs."""
    currents = reference @ xb_g
    return currents[:, 0::2] - currents[:, 1::2]


def network_at(programmed: ProgrammedNetwork, t_s: float, *, temperature_k: float = 300.0,
               compensation: str | None = None, law: RetentionLaw | None = None, noise: ReadNoise | None = None,
               seed: int = 0) -> nn.MappedNetwork:
    """The programmed network as read t_s [s] after programming, having rested at temperature_k [K]
    (module docstring); compensation: None, "global" (one factor per tile) or "column" (one per
    output column pair)."""
    if compensation not in COMPENSATIONS:
        raise ValueError(f"unknown compensation {compensation!r}; choose one of {COMPENSATIONS}")
    wv = programmed.write_verify
    law = RetentionLaw.of(programmed.device) if law is None else law
    rng = np.random.default_rng((seed, 1))
    layers = []
    for k, (layer, records) in enumerate(zip(programmed.mapped.layers, programmed.tiles)):
        tiles = []
        for n, (tile, record) in enumerate(zip(layer.tiles, records)):
            frozen = None if record.faults is None else record.faults.stuck
            g_t = conductance_at(programmed.device, record.result.states, t_s, v_read=wv.v_read,
                                 temperature_k=temperature_k, law=law, noise=noise, frozen=frozen,
                                 seed=(seed, k, n))
            if compensation is not None:
                reference = (rng.random((REFERENCE_INPUTS, g_t.shape[0])) < 0.5).astype(float)
                before = np.abs(_reference_outputs(tile.crossbar.conductance, reference))
                after = np.abs(_reference_outputs(g_t, reference))
                if compensation == "global":
                    scale = np.full(g_t.shape[1] // 2, before.sum() / max(after.sum(), 1e-300))
                else:
                    scale = before.sum(axis=0) / np.maximum(after.sum(axis=0), 1e-300)
                g_t = g_t * np.repeat(np.clip(scale, 1 / SCALE_LIMIT, SCALE_LIMIT), 2)[None, :]
            tiles.append(dataclasses.replace(tile, crossbar=tile.crossbar.replace(conductance=g_t)))
        layers.append(dataclasses.replace(layer, tiles=tuple(tiles)))
    return dataclasses.replace(programmed.mapped, layers=tuple(layers))


def accuracy_over_time(programmed: ProgrammedNetwork, x: np.ndarray, labels: np.ndarray, times_s, *,
                       temperatures_k=(300.0,), compensations=(None, "global", "column"),
                       noise: ReadNoise | None = None, backend: nn.Backend = nn.ideal_backend,
                       seed: int = 0) -> dict:
    """Test accuracy at every (temperature, compensation, time): {"times_s", "temperatures_k",
    "compensations", "accuracy": array (temperatures, compensations, times)}."""
    times = np.asarray(times_s, dtype=float)
    acc = np.empty((len(temperatures_k), len(compensations), len(times)))
    for a, temp in enumerate(temperatures_k):
        for b, comp in enumerate(compensations):
            for c, t in enumerate(times):
                net = network_at(programmed, t, temperature_k=temp, compensation=comp, noise=noise, seed=seed)
                acc[a, b, c] = nn.accuracy(nn.infer(net, x, backend).predictions, labels)
    return {"times_s": times, "temperatures_k": np.asarray(temperatures_k, dtype=float),
            "compensations": [str(c) for c in compensations], "accuracy": acc}
