{#
    The latest snapshot of each user's recent history for online scoring: the last
    var('recent_history_length') good events, oldest first, as parallel lists. One row per user, stamped at
    the user's last event_ts (the snapshot includes that event), so a feature store serving the latest row
    per user hands the reward model the history it scores the next title after.
#}

with

events as (

    select * from {{ ref('int_training_events') }}

),

ranked as (

    select
        user_id,
        item_id,
        event_ts,
        user_event_index,
        row_number() over (partition by user_id order by user_event_index desc) as recency_rank

    from events

),

recent as (

    select * from ranked
    where recency_rank <= {{ var('recent_history_length') }}

),

final as (

    select
        user_id,
        max(event_ts) as event_timestamp,
        list(item_id order by user_event_index) as recent_item_ids,
        list(epoch_us(event_ts) / 1000000.0 order by user_event_index) as recent_event_ts,
        cast(count(*) as bigint) as n_recent_events

    from recent
    group by user_id

)

select * from final
