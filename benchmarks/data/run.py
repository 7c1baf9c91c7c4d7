"""Ingest benchmark: loopml's ingest (read, hash, schema, quality report, split, Parquet
in the blob store, version recorded) against pandas' ``read_csv`` + ``describe()`` on the
same CSV, each in a fresh process timed by GNU time (wall seconds and peak RSS); then
loopml adds the same file again (found by its hash, not parsed).

    .venv/bin/python -m benchmarks.data.run [--rows 1000000] [--repeat 3] [--quoted]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.data.generate import frame

# Each script prints the seconds of its work alone (imports and set-up excluded).
PANDAS = """
import sys, time, pandas as pd
start = time.perf_counter()
df = pd.read_csv(sys.argv[1])
df.describe(include="all")
print("WORK", time.perf_counter() - start)
"""
LOOPML = """
import sys, tempfile, pathlib, time
from loopml.data.ingest import ingest
from loopml.store import projects
from loopml.store.blobs import BlobStore
from loopml.store.db import Database
home = pathlib.Path(tempfile.mkdtemp())
db = Database(f"sqlite:///{home}/loopml.db"); db.upgrade()
blobs = BlobStore((home / "blobs").as_uri())
with db.session() as s:
    projects.create(s, "bench")
start = time.perf_counter()
version, _ = ingest(db, blobs, "bench", "big", sys.argv[1], max_bytes=2**40, max_expanded=2**40)
print("WORK", time.perf_counter() - start)
start = time.perf_counter()  # the same file again: found by its hash, not parsed
again, created = ingest(db, blobs, "bench", "big", sys.argv[1], max_bytes=2**40, max_expanded=2**40)
assert again == version and not created
print("AGAIN", time.perf_counter() - start)
print("PARQUET", version.manifest["table"]["bytes"], "FINDINGS", len(version.quality))
"""
IMPORTS = {
    "pandas": "import pandas",
    "loopml": "import loopml.data.ingest, loopml.store.db",
}


def timed(code: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and stdout of ``python -c code args`` under GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", out.name, sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, kbytes = out.read().split()[-2:]
    return float(seconds), int(kbytes) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csv", type=Path, help="the file to read (made when missing)")
    parser.add_argument(
        "--quoted",
        action="store_true",
        help="quote every text value, as many exports do (a file with quotes may hold "
        "newlines inside values, which Arrow parses more slowly)",
    )
    args = parser.parse_args()
    default = "loopml-bench-quoted.csv" if args.quoted else "loopml-bench.csv"
    args.csv = args.csv or Path(tempfile.gettempdir()) / default
    if not args.csv.exists():
        frame(args.rows).to_csv(
            args.csv,
            index=False,
            quoting=csv.QUOTE_NONNUMERIC if args.quoted else csv.QUOTE_MINIMAL,
        )
    print(f"{args.csv}: {args.csv.stat().st_size / 1e6:.0f} MB")
    contenders = (("pandas read_csv + describe", PANDAS), ("loopml ingest", LOOPML))
    # Runs alternate between the contenders, so that a host whose speed drifts (a shared
    # one does, by 10-20% within minutes) slows both alike.
    timings: dict[str, list[tuple[float, float, str]]] = {name: [] for name, _ in contenders}
    for _ in range(args.repeat):
        for name, code in contenders:
            timings[name].append(timed(code, str(args.csv)))
    ratios = []
    for name, _ in contenders:
        runs = timings[name]
        base = timed(IMPORTS["loopml" if "loopml" in name else "pandas"])[1]
        work = [float(r[2].split("WORK")[1].split()[0]) for r in runs]
        ratios.append(work)
        peak = max(r[1] for r in runs)
        again = [float(r[2].split("AGAIN")[1].split()[0]) for r in runs if "AGAIN" in r[2]]
        stored = [line for line in runs[-1][2].splitlines() if line.startswith("PARQUET")]
        print(
            f"{name}: work median {statistics.median(work):.2f} s {[round(w, 2) for w in work]}, "
            f"process median {statistics.median(r[0] for r in runs):.2f} s, "
            f"peak RSS {peak:.0f} MB ({peak - base:.0f} MB above its imports)"
            + "".join(f"; {line}" for line in stored)
            + (f"; the same file again: {statistics.median(again):.2f} s" if again else "")
        )
    paired = [b / a for a, b in zip(*ratios, strict=True)]
    print(
        f"loopml / pandas, run by run: median {statistics.median(paired):.2f} "
        f"{[round(r, 2) for r in paired]}"
    )


if __name__ == "__main__":
    main()
