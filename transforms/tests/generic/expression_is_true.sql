{# Every row satisfies the boolean SQL expression (null counts as a failure). #}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
