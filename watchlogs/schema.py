"""The raw watch-log contract (see shared/design.md): one Arrow schema every producer writes."""

from __future__ import annotations

import pyarrow as pa

RAW_WATCH_LOG_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("event_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("watch_seconds", pa.float64()),
        pa.field("item_duration_seconds", pa.float64()),
        pa.field("rating", pa.int8()),
        pa.field("autoplay", pa.bool_()),
    ]
)

CONTRACT_COLUMNS = tuple(RAW_WATCH_LOG_SCHEMA.names)


def conform(table: pa.Table) -> pa.Table:
    """Cast the contract columns to their contract types and order them first; extras are kept.

    Raises ValueError naming the missing contract columns. Nullability is *not* enforced here:
    rows with null keys are quarantined downstream with a reason, never dropped.
    """
    missing = [c for c in CONTRACT_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"watch log is missing contract column(s): {', '.join(missing)}")
    extras = [c for c in table.column_names if c not in CONTRACT_COLUMNS]
    columns = [table.column(c).cast(RAW_WATCH_LOG_SCHEMA.field(c).type) for c in CONTRACT_COLUMNS]
    fields = [pa.field(f.name, f.type, nullable=True) for f in RAW_WATCH_LOG_SCHEMA]
    out = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    for name in extras:
        out = out.append_column(name, table.column(name))
    return out
