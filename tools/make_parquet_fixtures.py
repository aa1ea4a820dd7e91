"""Writes the Parquet copies of the bundled real data that the ingestion tests read.

Each file holds exactly the rows and values of its CSV in data/ (the tests assert that
reading either gives the same series), written the way common tools write Parquet:
typed columns with nulls for `NA`, dictionary-encoded strings, a real timestamp type,
and a different compression codec per file (snappy, gzip, zstd).

    pip install pyarrow
    python3 tools/make_parquet_fixtures.py   # from the repository root
"""
import csv
import datetime as dt
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/recur/tests/fixtures/parquet"


def number(text):
    return None if text in ("", "NA") else float(text)


def beijing():
    """Wide, split date columns, `wd` and `station` as strings; snappy."""
    src = ROOT / "data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv"
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    columns = {}
    for j, name in enumerate(header):
        cells = [r[j] for r in body]
        if name in ("No", "year", "month", "day", "hour"):
            columns[name] = pa.array([int(c) for c in cells], pa.int64())
        elif name in ("wd", "station"):
            columns[name] = pa.array([None if c in ("", "NA") else c for c in cells], pa.string())
        else:
            columns[name] = pa.array([number(c) for c in cells], pa.float64())
    pq.write_table(pa.table(columns), OUT / "beijing-aotizhongxin.parquet", compression="snappy")


def compressor():
    """Wide, one `timestamp` column of Parquet's timestamp type (µs, no zone); gzip.
    The first 20,000 rows only (two weeks), to keep the repository small."""
    src = ROOT / "data/compressor/compressor_power_output.csv"
    with open(src, newline="") as f:
        rows = list(csv.reader(f))[: 20_001]
    signal = rows[0][1]
    times = [dt.datetime.fromisoformat(r[0]) for r in rows[1:]]
    values = [number(r[1]) for r in rows[1:]]
    table = pa.table({"timestamp": pa.array(times, pa.timestamp("us")), signal: pa.array(values, pa.float64())})
    pq.write_table(table, OUT / "compressor-power.parquet", compression="gzip")


def physionet():
    """Long, `record_id,time,parameter,value` with `HH:MM` times as strings; zstd."""
    src = ROOT / "data/physionet/set-a-first400.csv"
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    body = rows[1:]
    table = pa.table(
        {
            "record_id": pa.array([int(r[0]) for r in body], pa.int64()),
            "time": pa.array([r[1] for r in body], pa.string()),
            "parameter": pa.array([r[2] for r in body], pa.string()).dictionary_encode(),
            "value": pa.array([number(r[3]) for r in body], pa.float64()),
        }
    )
    pq.write_table(table, OUT / "physionet-first400.parquet", compression="zstd")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    beijing()
    compressor()
    physionet()
    for p in sorted(OUT.glob("*.parquet")):
        print(p.relative_to(ROOT), p.stat().st_size, "bytes")
