{# One row per watch session (see int_events_sessionized for how sessions are cut). #}

with

sessionized as (

    select * from {{ ref('int_events_sessionized') }}

),

final as (

    select
        session_id,
        user_id,
        session_index,
        min(event_ts) as session_start_ts,
        max(event_ts) as session_end_ts,
        (epoch_us(max(event_ts)) - epoch_us(min(event_ts))) / 1e6 as session_span_seconds,
        count(*) as n_events,
        count(distinct item_id) as n_distinct_items,
        coalesce(sum(watch_seconds), 0) as total_watch_seconds,
        count(*) filter (where autoplay) as n_autoplay_events

    from sessionized
    group by session_id, user_id, session_index

)

select * from final
