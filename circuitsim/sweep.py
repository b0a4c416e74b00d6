"""Parameter sweeps from TOML: grid or seeded random points, run on a local process pool or a
Dask cluster, each finished point written at once to a results store (circuitsim.store).

A sweep file is a design file (tables [array] or [crossbar] conductance, [crossbar],
[selector], [transistor], [drive]) plus [sweep] (mode, engine, metrics...) and [axes]
("table.key" = values). The main process expands and validates every point before anything
runs, skips points already stored (keyed by a content hash of their inputs), and is the
only writer; workers only compute. See docs/guide/sweeps-and-store.md.
"""
from __future__ import annotations

import itertools
import os
import platform
import socket
import threading
import time
import tomllib
from collections import deque
from contextlib import closing, nullcontext
from dataclasses import dataclass
from importlib import metadata
from multiprocessing.connection import wait as connection_wait
from pathlib import Path

import numpy as np

from circuitsim import __version__
from circuitsim.circuit import make_drive
from circuitsim.config import CROSSBAR_KEYS, crossbar_from_dict
from circuitsim.design import Crossbar
from circuitsim.errors import PointTimeout, SchedulerError, WorkerLostError
from circuitsim.runner import ChildRunner, time_limit_error
from circuitsim.store import Store, point_key
from circuitsim.validate import array_size, finite_array, integer, positive_seconds

MODES = ("grid", "random")
SWEEP_KEYS = {"mode", "engine", "metrics", "samples", "seed", "timeout_s"}
TABLES = {"array": {"rows", "cols", "g_min", "g_max", "seed"},
          "crossbar": CROSSBAR_KEYS - {"conductance_file"},
          "selector": None, "transistor": None,  # their keys are checked by the device classes
          "drive": {"v_read", "vectors", "seed", "scheme", "row", "col", "v_rows", "v_cols", "v_gates"}}
RESULT_METRICS = ("cell_voltages", "cell_currents", "node_voltages")
METRICS = RESULT_METRICS + ("read_margin",)
READ_SCHEMES = ("floating", "v/2", "v/3")


@dataclass(frozen=True, eq=False)
class Point:
    """One sweep point: its parameters, the design and drive they make, and its store key."""

    params: dict
    crossbar: Crossbar
    drive: dict
    engine: str
    metrics: tuple[str, ...]
    timeout_s: float
    key: str

    def inputs(self) -> dict:
        """What the store records as this point's inputs (and hashes into its key)."""
        return {"params": _nest(self.params), "design": self.crossbar.as_dict(), "drive": self.drive,
                "engine": self.engine, "metrics": ",".join(self.metrics)}


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back: outputs and provenance, or the error that stopped the point."""

    key: str
    outputs: dict
    provenance: dict
    error: str | None


@dataclass(frozen=True)
class Sweep:
    points: tuple[Point, ...]
    seed: int | None


@dataclass(frozen=True)
class Summary:
    """Counts of one sweep run: points in the sweep, already stored (skipped), failed ones kept
    from earlier runs, and computed now (ok / failed), with the wall time [s]."""

    total: int
    stored: int
    kept_failed: int
    ok: int
    failed: int
    wall_s: float


# ---- config -> points ------------------------------------------------------------------

def _nest(flat: dict) -> dict:
    out: dict = {}
    for path, value in flat.items():
        table, key = path.split(".")
        out.setdefault(table, {})[key] = value
    return out


def _param_names(axis: str) -> list[str]:
    names = axis.split("+")
    for name in names:
        table, _, key = name.partition(".")
        if table not in TABLES or not key:
            raise ValueError(f"[axes] {axis!r}: each parameter is 'table.key' with table one of {sorted(TABLES)}")
        if TABLES[table] is not None and key not in TABLES[table]:
            raise ValueError(f"[axes] {axis!r}: unknown key {key!r} of [{table}]; allowed: {sorted(TABLES[table])}")
    return names


def _grid(axes: dict) -> list[dict]:
    for axis, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"[axes] {axis!r}: a grid axis is a non-empty list of values")
    names = [_param_names(a) for a in axes]
    return [{n: v for group, v in zip(names, combo) for n in group} for combo in itertools.product(*axes.values())]


def _draw(axis: str, spec, rng: np.random.Generator):
    if isinstance(spec, list):
        spec = {"choices": spec}
    keys = set(spec) if isinstance(spec, dict) else set()
    if not isinstance(spec, dict) or not (keys == {"choices"} or {"low", "high"} <= keys <= {"low", "high", "log"}):
        raise ValueError(f"[axes] {axis!r}: a random axis is a list of choices, {{choices = [...]}} or "
                         "{low = ..., high = ..., log = false}")
    if "choices" in spec:
        return spec["choices"][rng.integers(len(spec["choices"]))]
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low <= high and (low > 0 or not log)):
        raise ValueError(f"[axes] {axis!r}: need numbers low <= high (> 0 with log = true)")
    value = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if log else rng.uniform(low, high)
    return round(value) if isinstance(low, int) and isinstance(high, int) else float(value)


def _random(axes: dict, samples, seed) -> list[dict]:
    if not isinstance(samples, int) or samples < 1 or not isinstance(seed, int):
        raise ValueError("[sweep] mode = \"random\" needs samples (int >= 1) and seed (int)")
    names = {axis: _param_names(axis) for axis in axes}
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(samples):
        drawn = {axis: _draw(axis, spec, rng) for axis, spec in axes.items()}
        points.append({n: drawn[axis] for axis in axes for n in names[axis]})
    return points


def _conductance(array: dict) -> np.ndarray:
    missing = {"rows", "cols", "g_min", "g_max"} - set(array)
    if missing:
        raise ValueError(f"[array] needs {sorted(missing)} (or give [crossbar] conductance)")
    g_min, g_max = (float(finite_array(f"[array] {k}", array[k], shape=())) for k in ("g_min", "g_max"))
    if not 0 <= g_min <= g_max:
        raise ValueError(f"[array] needs 0 <= g_min <= g_max, got {g_min:g}, {g_max:g}")
    rng = np.random.default_rng(integer("[array] seed", array.get("seed", 0)))
    return rng.uniform(g_min, g_max, array_size(integer("[array] rows", array["rows"], minimum=1),
                                                integer("[array] cols", array["cols"], minimum=1)))


def _drive(xb: Crossbar, table: dict) -> dict:
    """Drive keyword arguments for simulate(): input vectors for scheme "all", or the bias of
    a read of cell (row, col) for a read scheme."""
    rows, cols = xb.shape
    scheme = table.get("scheme", "all")
    if scheme in READ_SCHEMES:
        from circuitsim.analysis import bias

        b = bias(xb.shape, table.get("row", 0), table.get("col", cols - 1), table.get("v_read", 0.2), scheme)
        drive = {"v_rows": b.v_rows, **b.kwargs()}
    elif scheme == "all":
        if "v_rows" in table:
            v_rows = np.asarray(table["v_rows"], dtype=float)
        else:
            rng = np.random.default_rng(table.get("seed", 0))
            vectors = integer("[drive] vectors", table.get("vectors", 1), minimum=1)
            v_rows = rng.uniform(0.0, table.get("v_read", 0.2), (vectors, rows))
        drive = {"v_rows": np.atleast_2d(v_rows), "v_cols": table.get("v_cols")}
    else:
        raise ValueError(f"[drive] scheme must be 'all' or one of {READ_SCHEMES}, got {scheme!r}")
    if "v_gates" in table:
        drive["v_gates"] = table["v_gates"]
    make_drive(xb, **drive)  # validates shapes and values now, before anything runs
    return {k: v for k, v in drive.items() if v is not None}


def make_point(params: dict, engine: str, metrics: tuple[str, ...], timeout_s: float,
               tables: tuple[str, ...] = ()) -> Point:
    """A validated point from flat parameters {'table.key': value}; `tables` names tables that
    are there even without keys (an empty [transistor] is an access transistor with defaults)."""
    doc = {table: {} for table in tables} | _nest(params)
    crossbar = dict(doc.get("crossbar", {}))
    if "array" in doc:
        if "conductance" in crossbar:
            raise ValueError("give either [array] (generated conductances) or [crossbar] conductance, not both")
        crossbar["conductance"] = _conductance(doc["array"])
    xb = crossbar_from_dict({"crossbar": crossbar, **{t: doc[t] for t in ("selector", "transistor") if t in doc}})
    drive = _drive(xb, doc.get("drive", {}))
    if "read_margin" in metrics:
        _read_margin_args(params, xb)  # fail now if the design cannot give a read margin
    point = Point(params, xb, drive, engine, metrics, timeout_s, key="")
    return Point(params, xb, drive, engine, metrics, timeout_s, key=point_key(point.inputs()))


def _read_margin_args(params: dict, xb: Crossbar) -> dict:
    scheme = params.get("drive.scheme", "v/2")
    if scheme not in READ_SCHEMES or xb.transistor is not None or "array.g_min" not in params:
        raise ValueError("metric read_margin needs [array] g_min/g_max (OFF/ON conductance), a read "
                         f"[drive] scheme {READ_SCHEMES}, and no transistor")
    return {"xb": xb, "g_on": params["array.g_max"], "g_off": params["array.g_min"],
            "v_read": params.get("drive.v_read", 0.2), "scheme": scheme}


def load_sweep(config: str | Path | dict) -> Sweep:
    """Every point of a sweep (a TOML file, or the same tables as a dict), validated: clear
    errors before anything runs."""
    if isinstance(config, dict):
        path, doc = "sweep config", config
    else:
        path = Path(config)
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(doc) - set(TABLES) - {"sweep", "axes"}
    if unknown:
        raise ValueError(f"{path}: unknown tables {sorted(unknown)}; allowed: {sorted(TABLES) + ['axes', 'sweep']}")
    cfg = doc.get("sweep", {})
    if set(cfg) - SWEEP_KEYS:
        raise ValueError(f"[sweep]: unknown keys {sorted(set(cfg) - SWEEP_KEYS)}; allowed: {sorted(SWEEP_KEYS)}")
    mode, engine = cfg.get("mode", "grid"), cfg.get("engine", "spice")
    metrics = tuple(cfg.get("metrics", ()))
    if mode not in MODES or engine not in ("spice", "numpy") or set(metrics) - set(METRICS):
        raise ValueError(f"[sweep]: mode one of {MODES}, engine 'spice' or 'numpy', metrics from {METRICS}; "
                         f"got {mode!r}, {engine!r}, {list(metrics)}")
    timeout_s = cfg.get("timeout_s", 600.0)
    positive_seconds("[sweep] timeout_s", timeout_s)
    base = {f"{table}.{k}": v for table in TABLES for k, v in doc.get(table, {}).items()}
    for name in base:
        _param_names(name)
    axes = doc.get("axes", {})
    varied = _grid(axes) if mode == "grid" else _random(axes, cfg.get("samples"), cfg.get("seed"))
    points, seen = [], set()
    for n, values in enumerate(varied):
        try:
            point = make_point({**base, **values}, engine, metrics, timeout_s, tuple(set(doc) & set(TABLES)))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: point {n} {values}: {exc}") from None
        if point.key not in seen:
            seen.add(point.key)
            points.append(point)
    return Sweep(tuple(points), cfg.get("seed"))


# ---- computing one point (in a worker process) -----------------------------------------

_SPICE_LOCK = threading.Lock()  # one ngspice per process: threads of a Dask worker take turns


def evaluate(point: Point) -> Outcome:
    """Compute one point; any failure becomes Outcome.error (the sweep goes on)."""
    from circuitsim.spice.worker import shared_worker

    start = time.perf_counter()
    provenance = {"circuitsim_version": __version__, "pyspice_version": metadata.version("PySpice"),
                  "engine": point.engine, "host": socket.gethostname(), "python_version": platform.python_version(),
                  "model_parameters": {k: v for k, v in point.crossbar.as_dict().items()
                                       if k in ("selector", "transistor")},
                  "seed": {name.split(".")[0]: v for name, v in point.params.items() if name.endswith(".seed")},
                  "worker_pid": os.getpid()}
    try:
        with _SPICE_LOCK:
            worker = shared_worker() if point.engine == "spice" else None
            if worker is not None:
                worker.timeout_s = point.timeout_s  # also bounds the runs analysis functions make
            outputs, extra = _compute(point, worker)
        provenance.update(extra)
        error = None
    except Exception as exc:
        outputs, error = {}, f"{type(exc).__name__}: {exc}"
    provenance["wall_time_s"] = time.perf_counter() - start
    return Outcome(point.key, outputs, provenance, error)


def _compute(point: Point, worker) -> tuple[dict, dict]:
    from circuitsim.analysis import read_margin
    from circuitsim.engines import simulate

    res = simulate(point.crossbar, engine=point.engine, worker=worker, timeout_s=point.timeout_s, **point.drive)
    outputs = {"column_currents": res.column_currents, "row_currents": res.row_currents, "power": res.power}
    outputs.update({m: getattr(res, m) for m in point.metrics if m in RESULT_METRICS})
    if "read_margin" in point.metrics:
        rm = read_margin(**_read_margin_args(point.params, point.crossbar), engine=point.engine)
        outputs["read_margin"] = vars(rm)
    extra = {k: v for k, v in res.provenance.items() if k in ("ngspice_version", "netlist_sha256", "convergence_aid")}
    return outputs, extra


def _failed(point: Point, error: Exception, wall_time_s: float) -> Outcome:
    """The outcome of a point whose computation was stopped from outside (time limit, lost worker)."""
    provenance = {"circuitsim_version": __version__, "engine": point.engine, "host": socket.gethostname(),
                  "wall_time_s": wall_time_s}
    return Outcome(point.key, {}, provenance, f"{type(error).__name__}: {error}")


DASK_POLL_S = 0.2  # how often a Dask sweep looks for finished points and for workers


# ---- running a sweep -------------------------------------------------------------------

def max_workers() -> int:
    """The most local worker processes a sweep may start: two per CPU this process may use
    (points are CPU-bound: more processes only cost memory, ~150 MB each with ngspice)."""
    return 2 * len(os.sched_getaffinity(0))


def _check_workers(workers) -> int:
    limit = max_workers()
    if workers is None:
        return len(os.sched_getaffinity(0))
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= limit:
        raise ValueError(f"workers must be an integer from 1 to {limit} (two per CPU on this machine), "
                         f"got {workers!r}")
    return workers


def _local_outcomes(points: list[Point], workers: int):
    """Outcomes of `points` computed on `workers` runner processes started here, in the order
    they finish. A point past its time limit has its runner killed (and replaced)."""
    todo = deque(points)
    # With several workers, their ngspice runs on one OpenMP thread each: libngspice is built with
    # OpenMP, and two workers each starting two threads on a 2-core machine scaled 1.36x instead
    # of 1.98x (measured).
    env = {"OMP_NUM_THREADS": "1"} if workers > 1 else {}
    runners: dict[ChildRunner, Point | None] = {ChildRunner(env=env): None for _ in range(min(workers, len(points)))}
    try:
        while todo or any(runners.values()):
            for runner, point in list(runners.items()):
                if runner.ready and point is None and todo:
                    runners[runner] = todo.popleft()
                    runner.submit(evaluate, runners[runner])
            deadlines = [r.busy_since + p.timeout_s for r, p in runners.items() if p is not None]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            readable = set(connection_wait([r.sock for r in runners], timeout=wait_s))
            for runner, point in list(runners.items()):
                outcome = _collect(runner, point, runner.sock in readable)
                if runner.closed:  # died or killed: a fresh one takes its place
                    del runners[runner]
                    if todo:
                        runners[ChildRunner(env=env)] = None
                elif outcome is not None:
                    runners[runner] = None
                if outcome is not None:
                    yield outcome
    finally:  # done, Ctrl-C or an error: the points in flight are abandoned
        for runner, point in runners.items():
            runner.kill() if point is not None else runner.close()


def _collect(runner: ChildRunner, point: Point | None, readable: bool) -> Outcome | None:
    """The outcome of `runner`'s point if it finished, its runner died or it ran past its time
    limit (then the runner is killed); None while it runs, or for a runner's "ready"."""
    if readable:
        try:
            return runner.receive()
        except WorkerLostError as exc:
            if not runner.ready:
                raise WorkerLostError(f"a worker process could not start (exit code {runner.process.returncode}); "
                                      "see its error above") from None
            return None if point is None else _failed(point, exc, runner.elapsed_s())
        except RuntimeError as exc:  # the child could not send its outcome back
            return _failed(point, exc, 0.0)
    if point is not None and runner.elapsed_s() >= point.timeout_s:
        ran_s = runner.elapsed_s()
        runner.kill()
        return _failed(point, time_limit_error(point.timeout_s), ran_s)
    return None


_DASK_RUNNER: list[ChildRunner] = []
_DASK_RUNNER_LOCK = threading.Lock()


def evaluate_with_limit(point: Point) -> Outcome:
    """evaluate() in a killable child of this (Dask worker) process, under the point's time limit."""
    with _DASK_RUNNER_LOCK:
        if not _DASK_RUNNER or not _DASK_RUNNER[0].alive():
            # Dask's executor threads may come and go: no kernel signal tied to this thread
            _DASK_RUNNER[:] = [ChildRunner(kernel_signal=False)]
        start = time.monotonic()
        try:
            return _DASK_RUNNER[0].call(evaluate, point, point.timeout_s)
        except (PointTimeout, RuntimeError) as exc:  # past its limit, runner died, outcome not sent back
            return _failed(point, exc, time.monotonic() - start)


def connect_dask(scheduler: str, timeout_s: float = 10.0):
    """A dask.distributed Client of the scheduler at `scheduler`, or a one-line SchedulerError
    (unreachable, no answer within timeout_s, or something that is not a Dask scheduler)."""
    from dask.distributed import Client

    if not isinstance(scheduler, str) or not scheduler.strip() or any(c.isspace() for c in scheduler):
        raise SchedulerError(f"a Dask scheduler address looks like tcp://host:8786, got {scheduler!r}")
    try:
        return Client(scheduler, timeout=f"{timeout_s}s")
    except OSError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise SchedulerError(f"no Dask scheduler answers at {scheduler} within {timeout_s:g} s ({reason}); is the "
                             "address right and the scheduler running?") from None
    except Exception as exc:  # a server that is not Dask makes the handshake fail in any way (even MemoryError)
        raise SchedulerError(f"{scheduler} answered, but not as a Dask scheduler (its reply could not be decoded: "
                             f"{type(exc).__name__}); is the address right?") from None


def _dask_outcomes(client, points: list[Point], worker_wait_s: float):
    """Outcomes of `points` computed on the cluster of `client`, in the order they finish.

    A point whose worker died is recorded failed by Dask's rules (KilledWorker after retries);
    a cluster left with no worker for worker_wait_s [s] raises SchedulerError (the finished
    points are stored by then; a rerun computes the rest)."""
    from dask.distributed import as_completed

    futures = {client.submit(evaluate_with_limit, p, key=f"circuitsim-point-{p.key}", pure=False): p for p in points}
    pending = as_completed(futures)
    without_workers_since = None
    try:
        while not pending.is_empty():
            finished = pending.next_batch(block=False)
            for future in finished:
                yield _outcome(future, futures.pop(future))
                future.release()
            if finished:
                continue
            if client.scheduler_info().get("workers"):
                without_workers_since = None
            elif without_workers_since is None:
                without_workers_since = time.monotonic()
            elif time.monotonic() - without_workers_since > worker_wait_s:
                raise SchedulerError(f"the Dask cluster at {client.scheduler.address} has had no worker for "
                                     f"{worker_wait_s:g} s; {len(futures)} points were not computed (the finished "
                                     "ones are stored: run the same command again when it has workers)")
            time.sleep(DASK_POLL_S)
    finally:
        client.cancel(list(futures))


def _outcome(future, point: Point) -> Outcome:
    """The worker's outcome, or a failed one if the worker itself died."""
    try:
        return future.result()
    except Exception as exc:
        return _failed(point, WorkerLostError(f"{type(exc).__name__}: {exc}"), 0.0)


def run_sweep(config: str | Path | dict, out: str | Path, *, workers: int | None = None, scheduler: str | None = None,
              retry_failed: bool = False, progress: bool = True, log=print, worker_wait_s: float = 60.0) -> Summary:
    """Run the points of `config` that `out` lacks (and its failed ones with retry_failed).

    workers: local worker processes (default one per CPU; at most max_workers()); scheduler:
    a Dask scheduler address instead (worker_wait_s: how long its cluster may have no worker
    before the sweep stops). Each finished point is written at once and dropped."""
    from tqdm import tqdm

    sweep = load_sweep(config)
    workers = _check_workers(workers)
    positive_seconds("worker_wait_s", worker_wait_s)
    start = time.perf_counter()
    client = connect_dask(scheduler) if scheduler else None  # before the store: nothing written if it fails
    with client or nullcontext(), Store.open(out, "a") as store:
        status = {p.key: store.status(p.key) for p in sweep.points}
        todo = [p for p in sweep.points if status[p.key] is None or (retry_failed and status[p.key] == "failed")]
        stored = sum(s is not None for s in status.values())
        kept = 0 if retry_failed else sum(s == "failed" for s in status.values())
        local = min(workers, len(todo) or 1)
        where = f"Dask scheduler {scheduler}" if scheduler else f"{local} local worker process{'es' * (local > 1)}"
        log(f"{out}: {len(sweep.points)} points, {stored} already stored ({kept} failed kept"
            f"{'' if retry_failed else '; --retry-failed retries them'}), {len(todo)} to compute on {where}")
        outcomes = _dask_outcomes(client, todo, worker_wait_s) if client else _local_outcomes(todo, workers)
        inputs = {p.key: p for p in todo}
        ok = failed = 0
        with closing(outcomes), tqdm(total=len(todo), unit="point", desc="sweep",
                                     disable=not progress or not todo) as bar:
            for outcome in outcomes:
                store.append(outcome.key, inputs.pop(outcome.key).inputs(), outcome.outputs, outcome.provenance,
                             outcome.error)
                ok, failed = ok + (outcome.error is None), failed + (outcome.error is not None)
                bar.set_postfix(failed=failed, refresh=False)
                bar.update()
                del outcome
    summary = Summary(len(sweep.points), stored, kept, ok, failed, time.perf_counter() - start)
    log(f"{out}: computed {ok} ok, {failed} failed in {summary.wall_s:.1f} s")
    return summary
