-- No leakage from the future in the reward feature tables: for every stats row, the cumulative event count
-- equals the number of the entity's events strictly before event_timestamp, and the cumulative rewarded
-- count likewise. Events and stats rows are merged on one timeline per entity; at equal timestamps the stats
-- row sorts first, so an event at exactly event_timestamp is not counted.

with

reward_events as (
    select * from {{ ref('fct_reward_events') }}
),

{% for entity in ['user', 'item'] %}

{{ entity }}_timeline as (
    select
        {{ entity }}_id as entity_id,
        event_ts as ts,
        1 as sort_key,
        1 as is_event,
        case when reward is not null then 1 else 0 end as is_rewarded,
        null::bigint as expected_n_events,
        null::bigint as expected_n_rewarded
    from reward_events

    union all

    select
        {{ entity }}_id,
        event_timestamp,
        0,
        0,
        0,
        {{ entity }}_n_events,
        {{ entity }}_n_rewarded
    from {{ ref(entity ~ '_reward_stats_daily') }}
),

{{ entity }}_running as (
    select
        '{{ entity }}' as entity,
        *,
        sum(is_event) over timeline as n_events_before,
        sum(is_rewarded) over timeline as n_rewarded_before
    from {{ entity }}_timeline
    window timeline as (
        partition by entity_id order by ts, sort_key
        rows between unbounded preceding and current row
    )
),

{% endfor %}

failures as (
    {% for entity in ['user', 'item'] %}
    select * from {{ entity }}_running
    where sort_key = 0
        and (n_events_before <> expected_n_events or n_rewarded_before <> expected_n_rewarded)
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from failures
