{# The list column is sorted ascending (ties allowed) in every row. #}
{% test is_sorted_list(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} is distinct from list_sort({{ column_name }})
{% endtest %}
