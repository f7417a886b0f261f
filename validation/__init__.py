"""Great Expectations 1.x gates for every stage of the chain.

`thresholds` holds every limit in one place, `suites` builds one expectation suite per stage as
code, `context` keeps the file-backed GX context under `<data>/gx/` (suites, validation
definitions, checkpoints, Data Docs), `gate.run_gate` validates a table and reports what failed,
and `landing` ingests delivered watch-log files through the raw gate into quarantine or raw.
Nothing here knows about Dagster.
"""
