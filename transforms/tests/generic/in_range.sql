{#
    Every non-null value of the column lies in [min_value, max_value] (either bound optional).
    inclusive=false makes both bounds strict.
#}
{% test in_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- set lo_op = '<' if inclusive else '<=' -%}
{%- set hi_op = '>' if inclusive else '>=' -%}
select {{ column_name }} as out_of_range_value
from {{ model }}
where {{ column_name }} is not null
  and (
    false
    {%- if min_value is not none %} or {{ column_name }} {{ lo_op }} {{ min_value }}{% endif %}
    {%- if max_value is not none %} or {{ column_name }} {{ hi_op }} {{ max_value }}{% endif %}
  )
{% endtest %}
