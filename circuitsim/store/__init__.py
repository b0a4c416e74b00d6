"""The HDF5 results store: points keyed by a content hash of their inputs, with provenance
(file.py: the file format and the Store), and the store as tables (tables.py).
See docs/guide/sweeps-and-store.md and docs/reference/file-formats.md."""
from circuitsim.errors import StoreCorruptError, StoreDamageWarning, StoreError, StoreLockedError, StoreVersionError
from circuitsim.store.file import FORMAT, FORMAT_VERSION, Store, all_points, point_key
from circuitsim.store.tables import read_points, to_dataframe, to_long, to_xarray

__all__ = ["FORMAT", "FORMAT_VERSION", "Store", "StoreCorruptError", "StoreDamageWarning", "StoreError",
           "StoreLockedError", "StoreVersionError", "all_points", "point_key", "read_points", "to_dataframe",
           "to_long", "to_xarray"]
