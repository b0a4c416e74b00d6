"""The HDF5 results store, on real files (and a real killed writer process)."""
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from circuitsim import __version__
from circuitsim.store import (
    FORMAT_VERSION,
    Store,
    StoreCorruptError,
    StoreDamageWarning,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    point_key,
    read_points,
    to_dataframe,
    to_long,
    to_xarray,
)
from circuitsim.store.file import _holds


def _point(n: int) -> tuple[dict, dict, dict]:
    """Inputs, outputs, provenance of a point whose arrays grow with n (varying shapes per point)."""
    rng = np.random.default_rng(n)
    inputs = {"design": {"conductance": rng.uniform(1e-6, 1e-4, (n, n + 1)), "r_row": 2.0,
                         "selector": {"type": "SinhSelector", "v0": 0.1}},
              "drive": {"v_rows": rng.uniform(0, 0.5, (2, n)), "floating_rows": np.zeros(n, dtype=bool)},
              "params": {"rows": n, "scheme": "v/2"}}
    outputs = {"column_currents": rng.uniform(0, 1e-4, (2, n + 1)), "power": 1e-5 * n,
               "read_margin": {"margin": 0.5 / n}}
    provenance = {"engine": "spice", "host": "testhost", "seed": {"array": n}, "wall_time_s": 0.1}
    return inputs, outputs, provenance


def test_points_round_trip_with_varying_shapes(tmp_path):
    path = tmp_path / "r.h5"
    with Store.open(path, "a") as store:
        keys = [store.append(None, *_point(n)) for n in (2, 3, 5)]
        assert len(store) == 3 and all(store.status(k) == "ok" for k in keys)
    pts = read_points(path)
    assert list(pts["key"]) == keys  # oldest first
    assert pts["outputs/power"].shape == (3,) and pts["outputs/power"][2] == 1e-5 * 5  # stored exactly
    conductances = pts["inputs/design/conductance"]
    assert conductances.dtype == object and [g.shape for g in conductances] == [(2, 3), (3, 4), (5, 6)]
    np.testing.assert_array_equal(conductances[1], _point(3)[0]["design"]["conductance"])
    assert list(pts["inputs/params/scheme"]) == ["v/2"] * 3
    assert pts["inputs/drive/floating_rows"][0].dtype == bool
    assert pts["outputs/read_margin/margin"][0] == 0.25
    assert list(pts["provenance/host"]) == ["testhost"] * 3


def test_layout_is_readable_with_plain_h5py(tmp_path):
    path = tmp_path / "plain.h5"
    big = np.arange(5000.0)
    with Store.open(path, "a") as store:
        key = store.append(None, {"x": big}, {"y": np.ones(3)}, {"host": "h"})
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "circuitsim-store" and f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["circuitsim_version"] == __version__
        point = f["points"][key]
        assert point.attrs["status"] == "ok" and point.attrs["error"] == ""
        x = point["inputs/x"]
        assert x.compression == "gzip" and x.chunks is not None
        np.testing.assert_array_equal(x[()], big)
        assert point["outputs/y"].compression is None  # small arrays stay contiguous
        assert point["provenance/host"].asstr()[()] == "h"


def test_point_key_is_a_content_hash():
    inputs = {"a": 8, "b": {"c": np.arange(3.0), "d": "v/2"}}
    same = {"b": {"d": "v/2", "c": [0.0, 1.0, 2.0]}, "a": 8.0}
    assert point_key(inputs) == point_key(same)
    assert point_key(inputs) != point_key({**inputs, "a": 9})
    assert point_key(inputs) != point_key({"a": 8, "b": {"c": np.arange(3.0), "d": "v/3"}})
    assert len(point_key(inputs)) == 64


def test_failed_points_are_recorded_and_can_be_replaced(tmp_path):
    path = tmp_path / "f.h5"
    inputs, outputs, provenance = _point(2)
    with Store.open(path, "a") as store:
        key = store.append(None, inputs, None, {"host": "h"}, error="SpiceTimeout: too slow")
    failed = read_points(path, status="failed")
    assert list(failed["error"]) == ["SpiceTimeout: too slow"] and "outputs/power" not in failed
    assert len(read_points(path)["key"]) == 0
    assert to_dataframe(path).loc[key, "status"] == "failed"
    with Store.open(path, "a") as store:
        assert store.status(key) == "failed"
        store.append(key, inputs, outputs, provenance)
        with pytest.raises(ValueError, match="already stored"):
            store.append(key, inputs, outputs, provenance)
    assert list(read_points(path)["key"]) == [key] and len(read_points(path, "failed")["key"]) == 0


def test_points_are_readable_while_the_writer_is_open(tmp_path):
    path = tmp_path / "live.h5"
    with Store.open(path, "a", checkpoint_s=3600) as store:
        store.append(None, *_point(2))
        assert len(read_points(path)["key"]) == 1  # pending point, before any checkpoint
        assert len(Store.open(path, "r")) == 1
        with h5py.File(path, "r") as f:
            assert len(f["points"]) == 0  # the main file is replaced only at checkpoints and close
    with h5py.File(path, "r") as f:
        assert len(f["points"]) == 1
    assert not (tmp_path / "live.h5.pending").exists()


def test_dataframe_is_tidy_with_parameters_and_results(tmp_path):
    """Before: 37 columns, none of them a result. Now one row per point: parameters, scalar results,
    min/mean/max of array results, status, error, wall time, engine."""
    path = tmp_path / "df.h5"
    with Store.open(path, "a") as store:
        keys = [store.append(None, *_point(n)) for n in (2, 3)]
        failed = store.append(None, {"params": {"rows": 9}}, None, {"engine": "numpy"}, error="PointTimeout: slow")
    df = to_dataframe(path)
    assert list(df.index) == [*keys, failed]
    assert list(df["rows"]) == [2, 3, 9] and list(df["status"]) == ["ok", "ok", "failed"]
    assert list(df["error"]) == ["", "", "PointTimeout: slow"] and list(df["engine"]) == ["spice", "spice", "numpy"]
    assert df["read_margin.margin"].iloc[:2].tolist() == [0.25, 1 / 6]
    currents = [_point(n)[1]["column_currents"] for n in (2, 3)]
    for summary in ("min", "mean", "max"):
        assert df[f"column_currents.{summary}"].iloc[:2].tolist() == [getattr(c, summary)() for c in currents]
    assert df["wall_time_s"].iloc[:2].tolist() == [0.1, 0.1] and np.isnan(df["read_margin.margin"].iloc[2])
    assert "design.conductance" not in df and "provenance.host" not in df
    assert list(to_dataframe(path, provenance=True)["provenance.host"].iloc[:2]) == ["testhost"] * 2
    assert list(to_dataframe(path, status="failed").index) == [failed]


def test_array_results_in_long_form_and_as_xarray(tmp_path):
    path = tmp_path / "long.h5"
    with Store.open(path, "a") as store:
        keys = [store.append(None, *_point(n)) for n in (2, 3)]
    long = to_long(path, "column_currents")
    assert list(long.columns) == ["key", "vector", "col", "value"] and len(long) == 2 * 3 + 2 * 4
    for key, n in zip(keys, (2, 3)):
        rows = long[long["key"] == key]
        np.testing.assert_array_equal(rows["value"].to_numpy().reshape(2, n + 1), _point(n)[1]["column_currents"])
        assert rows["col"].max() == n
    design = to_long(path, "inputs/design/conductance")
    assert list(design.columns) == ["key", "dim_0", "dim_1", "value"] and len(design) == 2 * 3 + 3 * 4
    with pytest.raises(KeyError, match="no point .* has 'outputs/missing'"):
        to_long(path, "missing")
    ds = to_xarray(path)
    assert list(ds["point"].values) == keys and ds["column_currents"].dims == ("point", "vector", "col")
    assert ds["column_currents"].shape == (2, 2, 4)  # padded to the larger array
    np.testing.assert_array_equal(ds["column_currents"].values[0, :, :3], _point(2)[1]["column_currents"])
    assert np.isnan(ds["column_currents"].values[0, :, 3]).all()
    assert list(ds["rows"].values) == [2, 3] and ds["read_margin.margin"].values[0] == 0.25


def test_second_writer_gets_a_clear_error(tmp_path):
    path = tmp_path / "lock.h5"
    with Store.open(path, "a"):
        assert (tmp_path / "lock.h5.lock").exists()
        with pytest.raises(StoreLockedError, match="being written by another process"):
            Store.open(path, "a")
        Store.open(path, "r")  # readers need no lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock.h5"]  # the lock file is removed at close
    Store.open(path, "a").close()  # released at close


def test_a_lock_won_on_a_removed_lock_file_is_not_taken_for_the_lock(tmp_path):
    """The race that removing the lock file at close opens: a writer opens `<file>.lock` just before
    the holder closes (which removes it), then wins the flock on the removed file. It must not
    count as the lock: a third writer, finding no lock file, makes a new one and holds that."""
    path, lock_path = tmp_path / "race.h5", tmp_path / "race.h5.lock"
    first = Store.open(path, "a")
    late = os.open(lock_path, os.O_RDWR)  # opened while the first writer holds it
    first.close()
    fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # won, but on a file no longer at lock_path
    try:
        assert not lock_path.exists() and not _holds(late, lock_path)
        with Store.open(path, "a") as third:
            assert _holds(third._lock_fd, lock_path)
            with pytest.raises(StoreLockedError):
                Store.open(path, "a")
    finally:
        os.close(late)


def test_bad_values_are_rejected_before_anything_is_written(tmp_path):
    path = tmp_path / "bad.h5"
    with Store.open(path, "a") as store:
        with pytest.raises(TypeError, match="outputs/x: cannot store"):
            store.append(None, {"a": 1.0}, {"x": object()})
        with pytest.raises(ValueError, match="point key"):
            store.append("../etc", {"a": 1.0})
        assert len(store) == 0 and not any((tmp_path / "bad.h5.pending").glob("*"))
    with pytest.raises(StoreError, match="read-only"):
        Store.open(path, "r").append(None, {"a": 1.0})


def test_another_format_version_gives_a_clear_message(tmp_path):
    path = tmp_path / "v.h5"
    Store.open(path, "a").close()
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(StoreVersionError, match=f"store format {FORMAT_VERSION + 1}.*reads format {FORMAT_VERSION}"):
        read_points(path)
    with pytest.raises(StoreVersionError, match="store format"):
        Store.open(path, "a")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(StoreVersionError, match="not a circuitsim results store"):
        Store.open(tmp_path / "other.h5", "r")


def test_truncated_file_gives_a_clear_message(tmp_path):
    path = tmp_path / "t.h5"
    with Store.open(path, "a") as store:
        for n in (4, 5, 6):
            store.append(None, *_point(n))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError, match="truncated or damaged"):
        read_points(path)
    with pytest.raises(StoreCorruptError, match="truncated or damaged"):
        Store.open(path, "a")


def test_points_of_a_killed_writer_are_recovered(tmp_path):
    """A writer that dies without closing leaves its points pending; the next writer folds them in."""
    path = tmp_path / "killed.h5"
    script = textwrap.dedent(f"""
        import os
        from circuitsim.store import Store
        store = Store.open({str(path)!r}, "a", checkpoint_s=3600)
        for n in range(3):
            store.append(None, {{"n": n}}, {{"y": float(n)}})
        open({str(path)!r} + ".pending/.half.tmp", "w").write("a part the writer did not finish")
        os._exit(0)  # no close: as after kill -9
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert sorted(read_points(path)["outputs/y"]) == [0.0, 1.0, 2.0]
    with Store.open(path, "a") as store:
        assert len(store) == 3
    with h5py.File(path, "r") as f:
        assert len(f["points"]) == 3
    assert not (tmp_path / "killed.h5.pending").exists()


@pytest.mark.slow
def test_kill_at_random_moments_never_leaves_an_unreadable_file(tmp_path):
    """A writer that checkpoints after every point (most of its time in the copy-and-rename path)
    is killed with SIGKILL at random moments; every time the file reads back and reopens."""
    path = tmp_path / "stress.h5"
    script = textwrap.dedent(f"""
        import numpy as np
        from circuitsim.store import Store
        store = Store.open({str(path)!r}, "a", checkpoint_s=0)
        n = len(store)
        print("writing", flush=True)
        while True:
            store.append(None, {{"n": n}}, {{"y": np.full(3000, float(n))}})
            n += 1
    """)
    rng = np.random.default_rng(1)
    counts = []
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "writing\n"  # started (a loaded machine may take seconds)
        time.sleep(rng.uniform(0.2, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        points = read_points(path)
        assert sorted(points["inputs/n"]) == list(range(len(points["key"])))
        np.testing.assert_array_equal(points["outputs/y"][:, 0], points["inputs/n"])
        counts.append(len(points["key"]))
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_a_damaged_pending_point_is_moved_aside_and_never_blocks_the_store(tmp_path):
    """Before: every writer crashed with an h5py OSError naming no file, readers skipped it silently."""
    path = tmp_path / "d.h5"
    with Store.open(path, "a", checkpoint_s=3600) as store:
        good = store.append(None, {"n": 1}, {"y": 1.0})
        bad = store.append(None, {"n": 2}, {"y": 2.0})
        pending = tmp_path / "d.h5.pending"
        damaged = pending / f"{bad}.h5"
        damaged.write_bytes(damaged.read_bytes()[:300])  # as if the disk had lost its end
        with pytest.warns(StoreDamageWarning, match=f"{damaged}: skipping a damaged pending point"):
            assert list(read_points(path)["key"]) == [good]
        store._lock_fd, lock_fd = None, store._lock_fd  # leave as a killed writer would: no close
    os.close(lock_fd)
    with pytest.warns(StoreDamageWarning, match=f"{damaged}: a damaged pending point .* was moved to "
                                                f"{tmp_path / 'd.h5.damaged'}"):
        with Store.open(path, "a") as store:
            assert store.keys() == [good] and store.status(bad) is None
            store.append(None, {"n": 2}, {"y": 2.0})  # computed again
    assert sorted(read_points(path)["outputs/y"]) == [1.0, 2.0]
    assert len(list((tmp_path / "d.h5.damaged").glob(f"{bad}-*.h5"))) == 1


def _store_with_one_point(path):
    with Store.open(path, "a") as store:
        return store.append(None, {"n": 1}, {"y": 1.0})


@pytest.mark.parametrize("damage, error, message", [
    (lambda f, key: f["points"][key].attrs.__delitem__("status"), StoreCorruptError, "point {key} has no status"),
    (lambda f, key: f["points"][key].attrs.__setitem__("status", "maybe"), StoreCorruptError,
     "point {key} has status 'maybe'"),
    (lambda f, key: (f.__delitem__("points"), f.create_dataset("points", data=[1.0])), StoreCorruptError,
     "'points' is a dataset, not a group"),
    (lambda f, key: f.attrs.__setitem__("format_version", "1"), StoreVersionError,
     "format_version is '1' \\(str\\), not an integer"),
])
def test_a_damaged_main_file_gives_one_clear_line_naming_it(tmp_path, damage, error, message):
    path = tmp_path / "m.h5"
    key = _store_with_one_point(path)
    with h5py.File(path, "r+") as f:
        damage(f, key)
    for reader in (read_points, lambda p: Store.open(p, "r"), lambda p: Store.open(p, "a")):
        with pytest.raises(error, match=str(path).replace(".", r"\.") + ".*" + message.format(key=key)) as info:
            reader(path)
        assert "\n" not in str(info.value)


def test_a_symlinked_file_is_written_through_and_locked_as_its_target(tmp_path):
    target, link, other = tmp_path / "data" / "real.h5", tmp_path / "link.h5", tmp_path / "other-link.h5"
    target.parent.mkdir()
    _store_with_one_point(target)
    link.symlink_to(target)
    other.symlink_to(target)
    with Store.open(link, "a") as store:
        store.append(None, {"n": 2}, {"y": 2.0})
        with pytest.raises(StoreLockedError):
            Store.open(other, "a")
        with pytest.raises(StoreLockedError):
            Store.open(target, "a")
    assert link.is_symlink() and sorted(read_points(target)["outputs/y"]) == [1.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.h5", "other-link.h5"]
    dangling = tmp_path / "new-link.h5"
    dangling.symlink_to(tmp_path / "data" / "new.h5")
    _store_with_one_point(dangling)
    assert dangling.is_symlink() and len(read_points(tmp_path / "data" / "new.h5")["key"]) == 1


@pytest.mark.parametrize("where, message", [
    ("folder", "is a folder; give the results file's name"),
    ("/dev/full", "is not a regular file"),
    ("/sys/circuitsim-test.h5", "cannot write the results file /sys/circuitsim-test.h5: Permission denied"),
    ("missing/r.h5", "the folder .*missing does not exist"),
])
def test_an_output_that_cannot_be_a_store_gives_one_clear_line(tmp_path, where, message):
    (tmp_path / "folder").mkdir()
    out = tmp_path / where
    before = set(tmp_path.rglob("*"))
    with pytest.raises(StoreError, match=message) as info:
        Store.open(out, "a")
    assert "\n" not in str(info.value)
    assert set(tmp_path.rglob("*")) == before and not Path("/dev/full.lock").exists()


def test_a_full_disk_gives_a_clear_error_and_keeps_what_was_stored(tmp_path):
    """A real write failure: the writer runs under a file-size limit (EFBIG, as a full disk gives
    ENOSPC): 1 MB for a 4 MB point in an existing store, 600 bytes for a new store."""
    path, new = tmp_path / "full.h5", tmp_path / "new" / "new.h5"
    _store_with_one_point(path)
    new.parent.mkdir()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from circuitsim.store import Store, StoreError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, resource.RLIM_INFINITY))  # soft limits only
        try:
            Store.open({str(new)!r}, "a")
        except StoreError as exc:
            print(exc)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
        with Store.open({str(path)!r}, "a") as store:
            try:
                store.append(None, {{"n": 2}}, {{"y": np.random.default_rng(0).uniform(size=500_000)}})
            except StoreError as exc:
                print(exc)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    new_error, point_error = run.stdout.splitlines()
    assert f"could not write {new} " in new_error and "too large" in new_error, run.stdout + run.stderr
    assert "could not write point" in point_error and "File too large" in point_error, run.stdout + run.stderr
    assert list(read_points(path)["outputs/y"]) == [1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.h5", "new"]
    assert list(new.parent.iterdir()) == []


def test_part_files_and_their_folder_are_synced_before_and_after_the_rename(tmp_path):
    """strace of a real writer: fsync(part) -> rename(part) -> fsync(folder), for every point."""
    path = tmp_path / "sync.h5"
    script = f"from circuitsim.store import Store\nwith Store.open({str(path)!r}, 'a', checkpoint_s=3600) as s:\n" \
             "    s.append(None, {'n': 1}, {'y': 1.0})\n"
    trace = tmp_path / "trace.txt"
    subprocess.run(["strace", "-f", "-y", "-e", "trace=fsync,rename,renameat,renameat2", "-o", str(trace),
                    sys.executable, "-c", script], check=True, timeout=120, capture_output=True)
    calls = [line for line in trace.read_text().splitlines() if "sync.h5.pending" in line]
    part = next(n for n, line in enumerate(calls) if "rename" in line and ".tmp" in line)
    assert "fsync(" in calls[part - 1] and ".tmp>" in calls[part - 1], calls
    assert "fsync(" in calls[part + 1] and calls[part + 1].split("<")[1].startswith(f"{path}.pending>"), calls
