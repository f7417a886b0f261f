{#
    Sample standard deviation from a count, a sum and a sum of squares (null below 2 values).
    The variance is rounded to 1e-12 before the square root: the sum-of-squares formula leaves float noise
    around 1e-15 that sqrt would blow up to ~1e-8 for a constant series; this way a constant series has a
    standard deviation of exactly 0.
#}
{% macro std_from_sums(n, total, total_sq) -%}
    case
        when {{ n }} > 1
            then sqrt(greatest(0.0, round(
                ({{ total_sq }} - {{ total }} * {{ total }} / {{ n }}) / ({{ n }} - 1), 12
            )))
    end
{%- endmacro %}

{#
    The two CTEs the user and item daily reward-stats models share, keyed by `entity` (user_id or item_id):
    `daily` aggregates one row per entity per day from `reward_events`; `windowed` adds cumulative,
    last-7-days and previous-7-days figures from it. Each model then picks and names its own columns.
#}
{% macro reward_stats_daily_ctes(entity) -%}
daily as (

    select
        {{ entity }},
        event_date,
        count(*) as n_events_day,
        count(reward) as n_rewarded_day,
        -- exact fixed-point sums of the reward rounded to 1e-12 (and of its exact square): the same result
        -- whatever the summation order, so reruns, incremental runs and full refreshes agree to the last bit
        coalesce(sum(cast(reward as decimal(18, 12))), 0) as reward_sum_day,
        coalesce(sum(cast(reward as decimal(18, 12)) * cast(reward as decimal(18, 12))), 0) as reward_sum_sq_day,
        max(event_ts) as last_event_ts,
        bit_xor(hash(event_id, reward)) as events_fingerprint

    from reward_events
    group by {{ entity }}, event_date

),

windowed as (

    select
        *,
        sum(n_events_day) over cumulative as n_events,
        sum(n_rewarded_day) over cumulative as n_rewarded,
        cast(sum(reward_sum_day) over cumulative as double) as reward_sum,
        cast(sum(reward_sum_sq_day) over cumulative as double) as reward_sum_sq,
        coalesce(sum(n_events_day) over last_7_days, 0) as n_events_7d,
        coalesce(sum(n_events_day) over previous_7_days, 0) as n_events_prev_7d,
        sum(n_rewarded_day) over last_7_days as n_rewarded_7d,
        cast(sum(reward_sum_day) over last_7_days as double) as reward_sum_7d

    from daily
    window
        cumulative as (
            partition by {{ entity }} order by event_date
            rows between unbounded preceding and current row
        ),
        last_7_days as (
            partition by {{ entity }} order by event_date
            range between interval 6 days preceding and current row
        ),
        previous_7_days as (
            partition by {{ entity }} order by event_date
            range between interval 13 days preceding and interval 7 days preceding
        )

)
{%- endmacro %}
