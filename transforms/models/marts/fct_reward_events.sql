{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        tags=['daily_partitioned'],
        post_hook="{{ delete_vanished_dates(ref('stg_watch_events')) }}"
    )
}}

{#
    One reward on the 1-5 scale per good watch event: the rating where given, else the watch-fraction
    mapping (macros/rewards.sql), else null with reward_source 'none'.
    Incremental: only the event dates whose events changed since the last run are rewritten, and with a partition
    window (ASFT_EVENT_DATE_FROM / _TO) also every date of the window (macros/incremental.sql).
#}

with

events as (

    select * from {{ ref('stg_watch_events') }}

),

rewarded as (

    select
        event_id,
        user_id,
        item_id,
        event_ts,
        event_date,
        rating,
        watch_seconds,
        item_duration_seconds,
        {{ watch_fraction('watch_seconds', 'item_duration_seconds') }} as watch_fraction,
        autoplay,
        case
            when rating is not null then cast(rating as double)
            else {{ watch_fraction_reward('watch_seconds', 'item_duration_seconds') }}
        end as reward,
        case
            when rating is not null then 'rating'
            when {{ watch_fraction('watch_seconds', 'item_duration_seconds') }} is not null
                then 'watch_fraction'
            else 'none'
        end as reward_source

    from events

),

{% if is_incremental() %}

changed_dates as (

    {{ changed_dates(
        'rewarded',
        ['event_id'],
        ['user_id', 'item_id', 'event_ts', 'rating', 'watch_seconds', 'item_duration_seconds', 'autoplay', 'reward']
    ) }}

),

{% endif %}

final as (

    select * from rewarded
    {% if is_incremental() %}
    where event_date in (select event_date from changed_dates)
        or {{ in_partition_window('event_date') }}
    {% endif %}

)

select * from final
