{#
    Good watch events cut into gap-based sessions per user: a user's first event starts session 0, and every
    event whose idle gap after the previous one (ordered by event_ts, event_id) is strictly more than
    var('session_gap_minutes') starts the next session. The idle gap runs from the end of the previous
    playback (its start + watch_seconds) where its length is known, else from its start (MovieLens):
    a two-hour film followed ten minutes after its end by the next title is one session, not two.
#}

with

events as (

    select * from {{ ref('stg_watch_events') }}

),

with_gaps as (

    select
        event_id,
        user_id,
        item_id,
        event_ts,
        event_date,
        watch_seconds,
        autoplay,
        row_number() over user_timeline - 1 as user_event_index,
        epoch_us(event_ts) - (
            epoch_us(lag(event_ts) over user_timeline)
            + cast(round(coalesce(lag(watch_seconds) over user_timeline, 0) * 1e6) as bigint)
        ) as gap_us

    from events
    window user_timeline as (partition by user_id order by event_ts, event_id)

),

flagged as (

    select
        *,
        gap_us / 1e6 as gap_seconds,
        gap_us is null
            or gap_us > {{ var('session_gap_minutes') }} * 60 * 1000000 as is_session_start

    from with_gaps

),

numbered as (

    -- one pass over each user's timeline: the running count of session starts numbers the sessions and
    -- the running max of session-start positions gives the position inside the session
    select
        *,
        sum(cast(is_session_start as integer)) over running_timeline - 1 as session_index,
        max(case when is_session_start then user_event_index end) over running_timeline as session_start_index

    from flagged
    window running_timeline as (
        partition by user_id
        order by user_event_index
        rows between unbounded preceding and current row
    )

),

final as (

    select
        event_id,
        user_id,
        item_id,
        event_ts,
        event_date,
        watch_seconds,
        autoplay,
        user_event_index,
        gap_seconds,
        is_session_start,
        cast(session_index as integer) as session_index,
        user_id || '-' || cast(session_index as varchar) as session_id,
        cast(user_event_index - session_start_index as integer) as position_in_session

    from numbered

)

select * from final
