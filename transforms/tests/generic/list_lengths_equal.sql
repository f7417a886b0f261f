{# The list columns of every row all have length `length_column` (parallel lists stay aligned). #}
{% test list_lengths_equal(model, list_columns, length_column) %}
select *
from {{ model }}
where false
{%- for col in list_columns %}
   or len({{ col }}) is distinct from {{ length_column }}
{%- endfor %}
{% endtest %}
