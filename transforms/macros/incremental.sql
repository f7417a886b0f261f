{#
    Change detection for the date-partitioned incremental models.

    changed_dates(new_rows, key_columns, fingerprint_columns, date_column) renders a query returning every
    value of date_column for which the rows of the CTE `new_rows` differ from the rows already in {{ this }}:
    a different row count or a different order-independent fingerprint (bit_xor of a row hash over
    key_columns + fingerprint_columns). Dates present on one side only count as changed.

    Incremental models rewrite those dates (or everything from the earliest of them, for cumulative
    aggregates) with delete+insert on date_column, so an incremental run gives what a full refresh gives,
    also for late-arriving events, without a hand-tuned lookback window.
#}
{% macro changed_dates(new_rows, key_columns, fingerprint_columns, date_column='event_date') -%}
    {%- set cols = key_columns + fingerprint_columns -%}
    with
    new_fingerprints as (
        select
            {{ date_column }} as fingerprint_date,
            count(*) as n_rows,
            bit_xor(hash({{ cols | join(', ') }})) as fingerprint
        from {{ new_rows }}
        group by 1
    ),
    old_fingerprints as (
        select
            {{ date_column }} as fingerprint_date,
            count(*) as n_rows,
            bit_xor(hash({{ cols | join(', ') }})) as fingerprint
        from {{ this }}
        group by 1
    )
    select coalesce(n.fingerprint_date, o.fingerprint_date) as {{ date_column }}
    from new_fingerprints as n
    full outer join old_fingerprints as o
        on n.fingerprint_date = o.fingerprint_date
    where n.fingerprint_date is null
        or o.fingerprint_date is null
        or n.n_rows <> o.n_rows
        or n.fingerprint <> o.fingerprint
{%- endmacro %}

{#
    Post-hook for the incremental models: delete rows of dates that no longer have any source rows
    (delete+insert only replaces dates that are in the new batch).
#}
{% macro delete_vanished_dates(upstream, date_column='event_date') -%}
    delete from {{ this }}
    where {{ date_column }} not in (select distinct {{ date_column }} from {{ upstream }})
{%- endmacro %}

{#
    The partition window of a partitioned run: Dagster passes its days as the environment variables
    ASFT_EVENT_DATE_FROM and ASFT_EVENT_DATE_TO ('YYYY-MM-DD', both inclusive). in_partition_window(date_column)
    renders a condition that holds for dates in the window, or `false` when both are unset (an unpartitioned run).
    They are read when the model runs (inside is_incremental()), not when dbt parses the project, so a new window
    costs no parse (vars would: dbt parses the whole project again whenever the vars change).
    The incremental models rewrite the window's dates in addition to the changed dates, so a partitioned
    run re-materializes its days even when nothing changed and still equals a full refresh.
#}
{% macro in_partition_window(date_column='event_date') -%}
    {%- set first = env_var('ASFT_EVENT_DATE_FROM', '') -%}
    {%- set last = env_var('ASFT_EVENT_DATE_TO', '') -%}
    {%- if not first and not last -%}
        false
    {%- else -%}
        {%- set iso_date = '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' -%}
        {%- if not (modules.re.match(iso_date, first) and modules.re.match(iso_date, last)) -%}
            {{ exceptions.raise_compiler_error(
                "ASFT_EVENT_DATE_FROM and ASFT_EVENT_DATE_TO must both be dates 'YYYY-MM-DD' (or both unset); got '"
                ~ first ~ "' and '" ~ last ~ "'") }}
        {%- endif -%}
        {%- if first > last -%}
            {{ exceptions.raise_compiler_error(
                "ASFT_EVENT_DATE_FROM (" ~ first ~ ") is after ASFT_EVENT_DATE_TO (" ~ last ~ ")") }}
        {%- endif -%}
        {{ date_column }} between cast('{{ first }}' as date) and cast('{{ last }}' as date)
    {%- endif -%}
{%- endmacro %}
