"""MovieLens / RecBole rating files mapped to the raw watch-log contract.

Formats, detected by file name:
- `u.data` (ml-100k): tab-separated `user item rating unix_ts`, no header;
- `ratings.dat` (ml-1m, ml-10m): `user::item::rating::unix_ts`, no header;
- `ratings.csv` (ml-20m, ml-25m, ml-latest): header `userId,movieId,rating,timestamp`,
  half-star ratings;
- `*.inter` (RecBole atomic files): tab-separated, header `name:type` per column; the columns
  `user_id`, `item_id`, `timestamp` are required, `rating` is optional.
The source's ids are kept as strings; ratings become int8 1-5 (half stars rounded half up,
clipped), with the original kept as `rating_raw` (float64) where the source has float ratings;
there is no playback, so watch_seconds, item_duration_seconds and autoplay are null. event_id is
`ml-<row>` (0-based data row in file order): unique and stable across reloads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from watchlogs.ids import numbered_ids
from watchlogs.schema import conform

FORMATS = ("u.data", "ratings.dat", "ratings.csv", "*.inter")
_COLUMNS = ("user", "item", "rating", "ts")


def load_movielens(path: Path) -> pa.Table:
    """Read one MovieLens/RecBole ratings file into a contract table (extras after)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = path.name
    if name == "u.data":
        raw, float_ratings = _read_headerless(path, "\t", _COLUMNS), False
    elif name == "ratings.dat":
        # '::' is two one-character delimiters around an empty field: keep every other column.
        names = ("user", "_a", "item", "_b", "rating", "_c", "ts")
        raw, float_ratings = _read_headerless(path, ":", names), False
    elif name == "ratings.csv":
        header = {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "ts"}
        raw, float_ratings = _read_with_header(path, ",", header, required=header), True
    elif name.endswith(".inter"):
        raw = _read_inter(path)
        float_ratings = "rating" in raw.column_names
    else:
        raise ValueError(
            f"{path}: unknown ratings format {name!r}; expected one of {', '.join(FORMATS)}"
        )
    return _to_contract(raw, float_ratings)


def _read_headerless(path: Path, delimiter: str, names: tuple[str, ...]) -> pa.Table:
    types = {"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "ts": pa.float64()}
    return _read(
        path,
        csv.ReadOptions(column_names=list(names), block_size=64 << 20),
        csv.ParseOptions(delimiter=delimiter, quote_char=False),
        csv.ConvertOptions(column_types=types, include_columns=list(_COLUMNS)),
    )


def _read_with_header(
    path: Path, delimiter: str, rename: dict[str, str], required: dict[str, str]
) -> pa.Table:
    """Read the columns in `rename` (source name -> our name); `required` ones must exist."""
    header = _header(path, delimiter)
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; header is {', '.join(header)}"
        )
    ours = {"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "ts": pa.float64()}
    present = {src: dst for src, dst in rename.items() if src in header}
    table = _read(
        path,
        csv.ReadOptions(block_size=64 << 20),
        csv.ParseOptions(delimiter=delimiter, quote_char='"' if delimiter == "," else False),
        csv.ConvertOptions(
            column_types={src: ours[dst] for src, dst in present.items()},
            include_columns=list(present),
        ),
    )
    return table.rename_columns([present[c] for c in table.column_names])


def _read_inter(path: Path) -> pa.Table:
    # RecBole headers are `name:type`; we go by the name only.
    by_name = {h.split(":", 1)[0]: h for h in _header(path, "\t")}
    wanted = {"user_id": "user", "item_id": "item", "rating": "rating", "timestamp": "ts"}
    required = {"user_id", "item_id", "timestamp"}
    missing = sorted(required - set(by_name))
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)} in the RecBole header "
            f"({', '.join(by_name.values())})"
        )
    rename = {by_name[n]: ours for n, ours in wanted.items() if n in by_name}
    return _read_with_header(path, "\t", rename, required={})


def _header(path: Path, delimiter: str) -> list[str]:
    with path.open("r", encoding="utf-8", newline="") as fh:
        line = fh.readline().rstrip("\r\n")
    if not line:
        raise ValueError(f"{path}: empty file, expected a header line")
    return [c.strip().strip('"') for c in line.split(delimiter)]


def _read(path, read_options, parse_options, convert_options) -> pa.Table:
    try:
        return csv.read_csv(
            path,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as err:
        raise ValueError(f"{path}: cannot parse as {path.name}: {err}") from err


def _to_contract(raw: pa.Table, float_ratings: bool) -> pa.Table:
    n = raw.num_rows
    if "rating" in raw.column_names:
        rating_raw = raw["rating"]
        rounded = pc.floor(pc.add(rating_raw, 0.5))  # half up: 3.5 -> 4, 0.5 -> 1
        rating = pc.max_element_wise(pc.min_element_wise(rounded, 5.0), 1.0).cast(pa.int8())
    else:
        rating_raw = rating = pa.nulls(n, pa.float64())
    micros = pc.round(pc.multiply(raw["ts"], 1e6)).cast(pa.int64())
    columns = {
        "event_id": numbered_ids("ml-", np.arange(n)),
        "user_id": raw["user"],
        "item_id": raw["item"],
        "event_ts": micros.cast(pa.timestamp("us", tz="UTC")),
        "watch_seconds": pa.nulls(n, pa.float64()),
        "item_duration_seconds": pa.nulls(n, pa.float64()),
        "rating": rating,
        "autoplay": pa.nulls(n, pa.bool_()),
    }
    if float_ratings:
        columns["rating_raw"] = rating_raw
    return conform(pa.table(columns))
