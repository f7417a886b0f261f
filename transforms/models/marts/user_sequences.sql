{#
    One row per user: the user's whole history as parallel lists in (event_ts, event_id) order, ready for a
    next-item model (read the lists with Arrow). Users with fewer than var('min_sequence_length') events are
    left out. Leave-one-out: the last element is the test target, the one before it the validation target.
#}

with

events as (

    select * from {{ ref('int_training_events') }}

),

final as (

    select
        user_id,
        list(event_id order by user_event_index) as event_ids,
        list(item_id order by user_event_index) as item_ids,
        list({{ epoch_seconds('event_ts') }} order by user_event_index) as timestamps,
        list(reward order by user_event_index) as rewards,
        list(session_index order by user_event_index) as session_indexes,
        count(*) as sequence_length,
        max(session_index) + 1 as n_sessions,
        min(event_ts) as first_event_ts,
        max(event_ts) as last_event_ts

    from events
    group by user_id
    having count(*) >= {{ var('min_sequence_length') }}

)

select * from final
