"""The sessionization benchmark's check: dbt's table and a pandas contender's output agree event by
event (joined on event_id), with an order-independent checksum of each side."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def compare_outputs(work: Path, pandas_kind: str, model: str) -> dict[str, Any]:
    """Per-event agreement of the dbt table and a pandas contender's Parquet, joined on event_id."""
    import duckdb

    con = duckdb.connect(str(work / "data" / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        path = str(work / f"{pandas_kind}_sessions.parquet").replace("'", "''")
        con.execute(f"create temp view p as select * from read_parquet('{path}')")
        con.execute(f"create temp view d as select * from intermediate.{model}")
        sides = {}
        for side in ("d", "p"):
            # The checksum is order-independent: a sum of per-event hashes of the assignment.
            rows, sessions, starts, checksum = con.sql(
                f"""select count(*), count(distinct session_id), count(*) filter (is_session_start),
                    sum(hash(event_id, session_index, position_in_session))::varchar
                from {side}"""
            ).fetchall()[0]
            sides[side] = {
                "rows": rows,
                "sessions": sessions,
                "session_starts": starts,
                "checksum": checksum,
            }
        names = ["unmatched", "user_or_ts", "user_event_index", "session", "position", "start"]
        # gap_seconds must be the very same double: both sides divide whole microseconds by 1e6.
        names += ["gap_seconds", "gap_seconds_max_abs_diff"]
        counts = con.sql(
            """select
                count(*) filter (d.event_id is null or p.event_id is null),
                count(*) filter (d.user_id <> p.user_id or d.event_ts <> p.event_ts),
                count(*) filter (d.user_event_index <> p.user_event_index),
                count(*) filter (
                    d.session_index <> p.session_index or d.session_id <> p.session_id
                ),
                count(*) filter (d.position_in_session <> p.position_in_session),
                count(*) filter (d.is_session_start <> p.is_session_start),
                count(*) filter (d.gap_seconds is distinct from p.gap_seconds),
                max(abs(d.gap_seconds - p.gap_seconds))
            from d full outer join p using (event_id)"""
        ).fetchall()[0]
    finally:
        con.close()
    mismatches = dict(zip(names, counts, strict=True))
    return {
        "dbt_duckdb": sides["d"],
        pandas_kind: sides["p"],
        "mismatched_events": mismatches,
        "agree": sides["d"] == sides["p"] and not any(mismatches.values()),
    }
