-- Nothing is silently dropped: every raw row is either a good event or a quarantined row.
-- Returns a row (= failure) when the counts do not add up.

with

raw_rows as (
    select count(*) as n from {{ source('raw', 'watch_logs') }}
),

checked_rows as (
    select count(*) as n from {{ ref('stg_watch_events__checked') }}
),

good_rows as (
    select count(*) as n from {{ ref('stg_watch_events') }}
),

quarantined_rows as (
    select count(*) as n from {{ ref('quarantine_watch_events') }}
)

select
    raw_rows.n as n_raw,
    checked_rows.n as n_checked,
    good_rows.n as n_good,
    quarantined_rows.n as n_quarantined
from raw_rows, checked_rows, good_rows, quarantined_rows
where raw_rows.n <> good_rows.n + quarantined_rows.n
    or raw_rows.n <> checked_rows.n
