-- Sessions follow the gap rule: an event starts a session exactly when it is the user's first event or
-- follows the previous one by more than var('session_gap_minutes'); the sessions table covers every event.

with

sessionized as (
    select * from {{ ref('int_events_sessionized') }}
),

sessions as (
    select * from {{ ref('fct_watch_sessions') }}
),

wrong_starts as (
    select event_id, 'wrong session start' as failure
    from sessionized
    where is_session_start <> (
        gap_seconds is null or gap_seconds > {{ var('session_gap_minutes') }} * 60
    )
),

wrong_totals as (
    select null as event_id, 'sessions do not cover the events' as failure
    from (select count(*) as n from sessionized) as e,
        (select sum(n_events) as n from sessions) as s
    where e.n is distinct from s.n
)

select * from wrong_starts
union all
select * from wrong_totals
