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
    The partition window of a partitioned run (Dagster passes its partitions as vars event_date_from and
    event_date_to, 'YYYY-MM-DD', both inclusive). in_partition_window(date_column) renders a condition that
    holds for dates in the window, or `false` when the vars are null (an unpartitioned run).
    The incremental models rewrite the window's dates in addition to the changed dates, so a partitioned
    run re-materializes its days even when nothing changed and still equals a full refresh.
#}
{% macro in_partition_window(date_column='event_date') -%}
    {%- set first = var('event_date_from', none) -%}
    {%- set last = var('event_date_to', none) -%}
    {%- if first is none and last is none -%}
        false
    {%- else -%}
        {%- set first, last = first | string, last | string -%}
        {%- set iso_date = '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' -%}
        {%- if not (modules.re.match(iso_date, first) and modules.re.match(iso_date, last)) -%}
            {{ exceptions.raise_compiler_error(
                "vars event_date_from and event_date_to must both be dates 'YYYY-MM-DD' (or both null); got "
                ~ first ~ " and " ~ last) }}
        {%- endif -%}
        {%- if first > last -%}
            {{ exceptions.raise_compiler_error(
                "var event_date_from (" ~ first ~ ") is after event_date_to (" ~ last ~ ")") }}
        {%- endif -%}
        {{ date_column }} between cast('{{ first }}' as date) and cast('{{ last }}' as date)
    {%- endif -%}
{%- endmacro %}
