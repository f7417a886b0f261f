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
