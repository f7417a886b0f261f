-- Every event's temporal split label agrees with the cut-offs:
-- train < valid_start <= valid < test_start <= test.

with

events as (
    select * from {{ ref('split_temporal_events') }}
),

cutoffs as (
    select * from {{ ref('split_cutoffs') }}
)

select events.*
from events
cross join cutoffs
where (events.split = 'train' and not events.event_ts < cutoffs.valid_start_ts)
    or (events.split = 'valid' and not (events.event_ts >= cutoffs.valid_start_ts and events.event_ts < cutoffs.test_start_ts))
    or (events.split = 'test' and not events.event_ts >= cutoffs.test_start_ts)
