{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        post_hook="{{ delete_vanished_dates(ref('fct_reward_events')) }}"
    )
}}

{#
    Point-in-time reward and popularity statistics per item, one row per item per day the item was watched,
    stamped at event_timestamp = the end of that UTC day (midnight of the next day). Every figure uses only
    events up to and including that day.
    Incremental: every date from the earliest date whose events changed onwards is rewritten, and with a partition
    window (ASFT_EVENT_DATE_FROM / _TO) also every date of the window (macros/incremental.sql).
#}

with

reward_events as (

    select * from {{ ref('fct_reward_events') }}

),

{{ reward_stats_daily_ctes('item_id') }},

features as (

    select
        item_id,
        event_date,
        {{ utc_midnight('event_date + 1') }} as event_timestamp,
        cast(n_events_day as bigint) as item_n_events_day,
        cast(n_events as bigint) as item_n_events,
        cast(n_rewarded as bigint) as item_n_rewarded,
        reward_sum / nullif(n_rewarded, 0) as item_reward_mean,
        {{ std_from_sums('n_rewarded', 'reward_sum', 'reward_sum_sq') }} as item_reward_std,
        cast(n_events_7d as bigint) as item_popularity_7d,
        cast(n_events_prev_7d as bigint) as item_popularity_prev_7d,
        (n_events_7d + 1.0) / (n_events_prev_7d + 1.0) as item_trend_7d,
        reward_sum_7d / nullif(n_rewarded_7d, 0) as item_reward_mean_7d,
        last_event_ts as item_last_event_ts,
        events_fingerprint

    from windowed

),

{% if is_incremental() %}

changed_dates as (

    {{ changed_dates('daily', ['item_id', 'event_date'], ['events_fingerprint']) }}

),

{% endif %}

final as (

    select * from features
    {% if is_incremental() %}
    where event_date >= (select min(event_date) from changed_dates)
        or {{ in_partition_window('event_date') }}
    {% endif %}

)

select * from final
