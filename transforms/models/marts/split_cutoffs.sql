{#
    The two cut-off dates of the temporal split (one row): train < valid_start <= valid < test_start <= test.
    Each is the var when set, else the var('valid_quantile') / var('test_quantile') quantile of the good
    events' event_ts, floored to the UTC day.
#}

{%- set valid_start = var('valid_start') -%}
{%- set test_start = var('test_start') -%}

with

events as (

    select * from {{ ref('stg_watch_events') }}

),

derived as (

    select
        {{ utc_date('quantile_disc(event_ts, ' ~ var('valid_quantile') ~ ')') }} as derived_valid_start,
        {{ utc_date('quantile_disc(event_ts, ' ~ var('test_quantile') ~ ')') }} as derived_test_start,
        count(*) as n_events

    from events

),

cutoffs as (

    select
        {% if valid_start is not none -%}
            cast('{{ valid_start }}' as date)
        {%- else -%}
            derived_valid_start
        {%- endif %} as valid_start,
        {% if test_start is not none -%}
            cast('{{ test_start }}' as date)
        {%- else -%}
            derived_test_start
        {%- endif %} as test_start,
        '{{ "var" if valid_start is not none else "quantile" }}' as valid_start_source,
        '{{ "var" if test_start is not none else "quantile" }}' as test_start_source,
        n_events

    from derived

),

final as (

    select
        valid_start,
        test_start,
        {{ utc_midnight('valid_start') }} as valid_start_ts,
        {{ utc_midnight('test_start') }} as test_start_ts,
        valid_start_source,
        test_start_source,
        n_events

    from cutoffs

)

select * from final
