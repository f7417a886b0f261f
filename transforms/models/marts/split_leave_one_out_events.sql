{#
    Every good event labelled by the leave-one-out split: per user, in (event_ts, event_id) order, the last
    event is test, the one before it valid and the rest train; users with fewer than var('loo_min_events')
    events are all train.
#}

with

events as (

    select * from {{ ref('int_training_events') }}

),

counted as (

    select
        *,
        count(*) over (partition by user_id) as user_n_events

    from events

),

final as (

    select
        event_id,
        user_id,
        item_id,
        event_ts,
        event_date,
        user_event_index,
        session_index,
        reward,
        reward_source,
        user_n_events,
        case
            when user_n_events < {{ var('loo_min_events') }} then 'train'
            when user_event_index = user_n_events - 1 then 'test'
            when user_event_index = user_n_events - 2 then 'valid'
            else 'train'
        end as split

    from counted

)

select * from final
