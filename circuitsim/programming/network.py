"""A neural network put on arrays by programming them: every tile written by write-verify, then
read at times after programming (relaxation, read noise), with and without drift compensation.

program_network writes each tile's target conductances (nn.map_network) into an array of
stateful devices with circuitsim.programming.program_array, then places the achieved read
conductances in the tiles. network_at reads those arrays t seconds later at a temperature
(drift.conductance_at) and optionally compensates drift as aihwkit does: a fixed set of
reference inputs is read at t = 0 and at t, and the outputs are rescaled by the ratio of their
L1 norms, per tile ("global") or per output column pair ("column").

Stuck cells (found by a fault scan before programming, as a chip test would) can be worked
around in two ways. fault_compensation: the partner cell's target is moved so that G⁺ − G⁻
keeps its value where the range [g_min_s, g_max_s] allows. remap_columns: the tile's column pairs are
assigned to the array's physical pairs (spare_pairs extra ones per array) so that the weight
error the stuck cells leave (after the pair compensation, if on) is smallest, weighted by the
slice's significance (a linear assignment, scipy.optimize.linear_sum_assignment); unused pairs
are programmed to g_min and not sensed.

Inference reads the programmed conductances as linear cells (nn's engines), at the verify's
read voltage.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

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
    """One programmed tile: its array's wiring, fault map and ProgrammedArray (states, conductances)
    of the whole physical array; columns: the physical column of each of the tile's columns."""

    array: Crossbar
    faults: Faults | None
    result: ProgrammedArray
    columns: np.ndarray

    @property
    def states(self) -> np.ndarray:
        """Programmed states of the tile's columns (rows, tile cols)."""
        return self.result.states[:, self.columns]

    @property
    def stuck(self) -> np.ndarray | None:
        return None if self.faults is None else self.faults.stuck[:, self.columns]


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


def _pair_targets(t_pos, t_neg, stuck_pos, stuck_neg, g_pos, g_neg, g_low: float, g_high: float):
    """Targets (G⁺, G⁻) with the partner of a stuck cell moved so that G⁺ − G⁻ keeps its value
    (clipped to the device range [g_low, g_high]); g_pos / g_neg: what the stuck cells read. Broadcasts."""
    diff = t_pos - t_neg
    new_neg = np.where(stuck_pos & ~stuck_neg, np.clip(g_pos - diff, g_low, g_high), t_neg)
    new_pos = np.where(stuck_neg & ~stuck_pos, np.clip(g_neg + diff, g_low, g_high), t_pos)
    return new_pos, new_neg


def _compensate_stuck(target: np.ndarray, stuck: np.ndarray, g_stuck: np.ndarray, g_low: float,
                      g_high: float) -> np.ndarray:
    """Targets (rows, cols; pairs G⁺, G⁻ side by side) with each stuck cell's pair partner moved
    (_pair_targets); stuck / g_stuck: the stuck mask and what those cells read, same shape."""
    pos, neg = slice(0, None, 2), slice(1, None, 2)
    out = target.copy()
    out[:, pos], out[:, neg] = _pair_targets(target[:, pos], target[:, neg], stuck[:, pos], stuck[:, neg],
                                             g_stuck[:, pos], g_stuck[:, neg], g_low, g_high)
    return out


def _pair_damage(target: np.ndarray, stuck: np.ndarray, g_stuck: np.ndarray, g_low: float, g_high: float,
                 compensate: bool, significance: np.ndarray) -> np.ndarray:
    """(tile pairs, physical pairs) cost of putting tile pair k on physical pair p: Σ over rows of
    |achieved − target| of G⁺ − G⁻ (stuck cells read g_stuck, the others their target), times
    significance[k]."""
    t_pos, t_neg = target[:, 0::2, None], target[:, 1::2, None]
    s_pos, s_neg = stuck[:, None, 0::2], stuck[:, None, 1::2]
    g_pos, g_neg = g_stuck[:, None, 0::2], g_stuck[:, None, 1::2]
    if compensate:
        t_pos, t_neg = _pair_targets(t_pos, t_neg, s_pos, s_neg, g_pos, g_neg, g_low, g_high)
    achieved = np.where(s_pos, g_pos, t_pos) - np.where(s_neg, g_neg, t_neg)
    wanted = target[:, 0::2, None] - target[:, 1::2, None]
    return np.abs(achieved - wanted).sum(axis=0) * significance[:, None]


def _assign_columns(target: np.ndarray, stuck: np.ndarray, g_stuck: np.ndarray, g_low: float, g_high: float,
                    compensate: bool, slices: int, levels: int) -> np.ndarray:
    """Physical column of each tile column: the pair assignment of least _pair_damage."""
    pairs = target.shape[1] // 2
    significance = float(levels) ** (np.arange(pairs) % slices)
    cost = _pair_damage(target, stuck, g_stuck, g_low, g_high, compensate, significance)
    _, physical = linear_sum_assignment(cost)
    return np.stack([2 * physical, 2 * physical + 1], axis=1).reshape(-1)


def program_network(mapped: nn.MappedNetwork, device: StateDevice, write_verify: WriteVerify, *,
                    transistor: NmosAccess | None = None, stuck_on_rate: float = 0.0, stuck_off_rate: float = 0.0,
                    fault_compensation: bool = False, remap_columns: bool = False, spare_pairs: int = 0,
                    seed: int = 0, progress=None, concurrent_rows: bool = True) -> ProgrammedNetwork:
    """Program every tile of `mapped` into arrays of `device` (1T1R with `transistor`, else as the
    tile: 1R or its selector), wires of the tile's r_row/r_col, spare_pairs extra column pairs per
    array. Stuck-at faults are drawn per array (rates, seeded); fault_compensation and
    remap_columns work around them (module docstring). progress: callable(tiles_done, tiles_total);
    concurrent_rows: passed to program_array."""
    if not isinstance(spare_pairs, int) or spare_pairs < 0:
        raise ValueError(f"spare_pairs must be an integer >= 0, got {spare_pairs!r}")
    if spare_pairs and not remap_columns:
        raise ValueError("spare_pairs are used only with remap_columns=True")
    start = time.perf_counter()
    hw = mapped.hardware
    programmed_layers, tiles_out = [], []
    total = sum(len(layer.tiles) for layer in mapped.layers)
    done = 0
    for k, layer in enumerate(mapped.layers):
        new_tiles, records = [], []
        for n, tile in enumerate(layer.tiles):
            xb = tile.crossbar
            rows, cols = xb.shape
            shape = (rows, cols + 2 * spare_pairs)
            spare = ((0, 0), (0, 2 * spare_pairs))
            array = Crossbar(conductance=np.ones(shape), r_row=np.pad(xb.r_row, spare, mode="edge"),
                             r_col=np.pad(xb.r_col, spare, mode="edge"),
                             selector=None if transistor is not None else xb.selector, transistor=transistor)
            models = CellModels(device, shape)
            g0, g1, on_end = conductance_range(models, write_verify.v_read)
            # the range a moved partner may take: the hardware's levels' span, within the device's
            g_low = max(float(np.min(np.minimum(g0, g1))), hw.g_min_s)
            g_high = min(float(np.max(np.maximum(g0, g1))), hw.g_max_s)
            faults, columns, target = None, np.arange(cols), xb.conductance
            if stuck_on_rate or stuck_off_rate:
                faults = random_faults(shape, stuck_on_rate, stuck_off_rate, seed=(seed, k, n))
                g_stuck = models.read_conductance(faults.pin_states(models.initial_state, on_end),
                                                  write_verify.v_read)
                if remap_columns:
                    columns = _assign_columns(target, faults.stuck, g_stuck, g_low, g_high, fault_compensation,
                                              hw.slices, hw.levels)
                if fault_compensation:
                    target = _compensate_stuck(target, faults.stuck[:, columns], g_stuck[:, columns], g_low, g_high)
            physical = np.full(shape, hw.g_min_s)  # unused (spare) pairs: programmed off
            physical[:, columns] = target
            result = program_array(array, device, physical, write_verify, faults=faults,
                                   concurrent_rows=concurrent_rows)
            record = ProgrammedTile(array, faults, result, columns)
            new_tiles.append(dataclasses.replace(tile, crossbar=xb.replace(
                conductance=result.conductance_s[:, columns])))
            records.append(record)
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
            g_t = conductance_at(programmed.device, record.states, t_s, v_read=wv.v_read,
                                 temperature_k=temperature_k, law=law, noise=noise, frozen=record.stuck,
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


# Ways of working around stuck cells compared by fault_study: program_network's keyword arguments.
FAULT_MAPPINGS = {"none": {}, "pair compensation": {"fault_compensation": True},
                  "remap + pair": {"fault_compensation": True, "remap_columns": True},
                  "2 spare pairs + remap + pair": {"fault_compensation": True, "remap_columns": True,
                                                   "spare_pairs": 2}}


def fault_study(mapped: nn.MappedNetwork, device: StateDevice, write_verify: WriteVerify, x: np.ndarray,
                labels: np.ndarray, stuck_rates, *, mappings: dict = FAULT_MAPPINGS,
                transistor: NmosAccess | None = None, backend: nn.Backend = nn.ideal_backend, seed: int = 0,
                progress=None) -> dict:
    """Test accuracy right after programming against the stuck-at rate (half stuck ON, half OFF),
    for each way of mapping around the faults (name -> program_network keywords); the network is
    programmed once per (rate, mapping), the same fault draws (seed) for every mapping. Returns
    {"stuck_rates", "mappings", "accuracy": (mappings, rates), "stuck": cells reported stuck}.
    progress: callable(runs_done, runs_total)."""
    rates = np.asarray(stuck_rates, dtype=float)
    names = list(mappings)
    acc, stuck = np.empty((len(names), len(rates))), np.zeros((len(names), len(rates)), int)
    for b, rate in enumerate(rates):
        for a, name in enumerate(names):
            if rate == 0 and a > 0:  # no fault to map around: the same network
                acc[a, b], stuck[a, b] = acc[0, b], stuck[0, b]
                continue
            programmed = program_network(mapped, device, write_verify, transistor=transistor, stuck_on_rate=rate / 2,
                                         stuck_off_rate=rate / 2, seed=seed, **mappings[name])
            acc[a, b] = nn.accuracy(nn.infer(programmed.mapped, x, backend).predictions, labels)
            stuck[a, b] = programmed.summary["stuck"]
            if progress is not None:
                progress(b * len(names) + a + 1, len(rates) * len(names))
    return {"stuck_rates": rates, "mappings": names, "accuracy": acc, "stuck": stuck}
