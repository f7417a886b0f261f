{#
    The reward mapping of watch behaviour onto the 1-5 rating scale (see models/marts/fct_reward_events.yml):

        f      = watch_seconds / item_duration_seconds
        reward = 1 + 4 * clip((f - lo) / (hi - lo), 0, 1)
        lo     = var('reward_min_watch_fraction')  (default 0.0)
        hi     = var('reward_full_watch_fraction') (default 1.0)

    Null when either input is null or the duration is not positive.
#}
{% macro watch_fraction(watch_seconds, item_duration_seconds) -%}
    case
        when {{ item_duration_seconds }} > 0
            then {{ watch_seconds }} / {{ item_duration_seconds }}
    end
{%- endmacro %}

{% macro watch_fraction_reward(watch_seconds, item_duration_seconds) -%}
    {%- set lo = var('reward_min_watch_fraction') | float -%}
    {%- set hi = var('reward_full_watch_fraction') | float -%}
    {%- if hi <= lo -%}
        {{ exceptions.raise_compiler_error(
            "var reward_full_watch_fraction (" ~ hi ~ ") must be greater than reward_min_watch_fraction (" ~ lo ~ ")"
        ) }}
    {%- endif -%}
    {#- DuckDB's least/greatest skip nulls, so the null case is spelled out. #}
    case
        when {{ watch_seconds }} is not null and {{ item_duration_seconds }} > 0
            then 1.0 + 4.0 * least(1.0, greatest(0.0,
                ({{ watch_fraction(watch_seconds, item_duration_seconds) }} - {{ lo }}) / {{ hi - lo }}
            ))
    end
{%- endmacro %}
