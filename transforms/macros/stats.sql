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
