"""Programming results in the HDF5 store (circuitsim.store), with their provenance.

The array is programmed first and stored only when that succeeded, as one point: a request
that is refused (ProgrammingError) or fails leaves the store as it was.
"""
from __future__ import annotations

from pathlib import Path

from circuitsim.design import Crossbar
from circuitsim.programming.faults import Faults
from circuitsim.programming.pulses import CellModels
from circuitsim.programming.verify import ProgrammedArray, WriteVerify, program_array
from circuitsim.store import Store


def program_to_store(path: str | Path, xb: Crossbar, cells, target_conductance, write_verify: WriteVerify, *,
                     key: str | None = None, faults: Faults | None = None, **program_kwargs) -> ProgrammedArray:
    """program_array(...) (same arguments), then one point in the store at `path`: inputs (the
    design, the devices, the targets, the algorithm, the faults), outputs (ProgrammedArray.as_tree)
    and provenance. Returns the result; key: the point's key (default: hash of the inputs)."""
    result = program_array(xb, cells, target_conductance, write_verify, faults=faults, **program_kwargs)
    models = CellModels(cells, xb.shape)
    devices = {f"group{k}": {"type": type(d).__name__, **d.spice_params()} for k, (d, _) in enumerate(models.groups)}
    inputs = {"crossbar": _storable(xb.as_dict()), "devices": devices, "initial_states": models.initial_state,
              "target_conductance_s": result.target_s, "write_verify": write_verify.as_dict(),
              "faults": None if faults is None else faults.as_tree()}
    with Store.open(path, "a") as store:
        store.append(key, inputs, result.as_tree(), _storable(result.provenance))
    return result


def _storable(tree: dict) -> dict:
    """Lists of names become one comma-separated string (the store keeps arrays of numbers or strings)."""
    return {k: _storable(v) if isinstance(v, dict) else ", ".join(v) if isinstance(v, list) else v
            for k, v in tree.items()}
