{# The UTC calendar date of a TIMESTAMP WITH TIME ZONE, whatever the session time zone. #}
{% macro utc_date(ts) -%}
    cast(timezone('UTC', {{ ts }}) as date)
{%- endmacro %}

{# Midnight UTC at the start of a date, as TIMESTAMP WITH TIME ZONE. #}
{% macro utc_midnight(date_expr) -%}
    timezone('UTC', cast({{ date_expr }} as timestamp))
{%- endmacro %}

{# The run's start instant (dbt's run_started_at, UTC) as TIMESTAMP WITH TIME ZONE. #}
{% macro run_started_at_utc() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00' as timestamptz)
{%- endmacro %}

{# Whole seconds since the Unix epoch of a TIMESTAMP WITH TIME ZONE. #}
{% macro epoch_seconds(ts) -%}
    cast(floor(epoch_us({{ ts }}) / 1000000) as bigint)
{%- endmacro %}
