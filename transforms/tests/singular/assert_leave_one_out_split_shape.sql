-- Leave-one-out: a user with at least var('loo_min_events') events has exactly one test event (the last)
-- and one valid event (the one before it); shorter histories are train only.

with

events as (
    select * from {{ ref('split_leave_one_out_events') }}
),

per_user as (
    select
        user_id,
        count(*) as n_events,
        count(*) filter (where split = 'test') as n_test,
        count(*) filter (where split = 'valid') as n_valid,
        max(user_event_index) filter (where split = 'test') as test_index,
        max(user_event_index) filter (where split = 'valid') as valid_index,
        max(user_event_index) as last_index
    from events
    group by user_id
)

select *
from per_user
where (
        n_events >= {{ var('loo_min_events') }}
        and not (n_test = 1 and n_valid = 1 and test_index = last_index and valid_index = last_index - 1)
    )
    or (n_events < {{ var('loo_min_events') }} and (n_test > 0 or n_valid > 0))
