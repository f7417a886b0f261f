{#
    Good watch events joined with their session and reward: the event-level input of the split and
    sequence marts. The order of a user's events is user_event_index (event_ts, then event_id).
#}

with

sessionized as (

    select * from {{ ref('int_events_sessionized') }}

),

reward_events as (

    select * from {{ ref('fct_reward_events') }}

),

final as (

    select
        sessionized.event_id,
        sessionized.user_id,
        sessionized.item_id,
        sessionized.event_ts,
        sessionized.event_date,
        sessionized.user_event_index,
        sessionized.session_index,
        sessionized.session_id,
        sessionized.position_in_session,
        reward_events.reward,
        reward_events.reward_source,
        sessionized.autoplay

    from sessionized
    inner join reward_events
        on sessionized.event_id = reward_events.event_id

)

select * from final
