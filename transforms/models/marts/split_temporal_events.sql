{#
    Every good event labelled by the temporal split (split_cutoffs):
    train: event_ts < valid_start; valid: valid_start <= event_ts < test_start; test: event_ts >= test_start.
#}

with

events as (

    select * from {{ ref('int_training_events') }}

),

cutoffs as (

    select * from {{ ref('split_cutoffs') }}

),

final as (

    select
        events.event_id,
        events.user_id,
        events.item_id,
        events.event_ts,
        events.event_date,
        events.user_event_index,
        events.session_index,
        events.reward,
        events.reward_source,
        case
            when events.event_ts < cutoffs.valid_start_ts then 'train'
            when events.event_ts < cutoffs.test_start_ts then 'valid'
            else 'test'
        end as split

    from events
    cross join cutoffs

)

select * from final
