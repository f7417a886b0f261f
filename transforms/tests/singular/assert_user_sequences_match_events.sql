-- Each user sequence lists exactly the user's events in (event_ts, event_id) order: element i of every list
-- is the user's event with user_event_index = i - 1; users left out have fewer than var('min_sequence_length').

with

sequences as (
    select * from {{ ref('user_sequences') }}
),

events as (
    select * from {{ ref('int_training_events') }}
),

elements as (
    select
        user_id,
        generate_subscripts(event_ids, 1) - 1 as user_event_index,
        unnest(event_ids) as event_id,
        unnest(item_ids) as item_id,
        unnest(rewards) as reward,
        unnest(session_indexes) as session_index
    from sequences
),

expected as (
    select events.*
    from events
    where events.user_id in (select user_id from sequences)
),

mismatches as (
    select coalesce(e.user_id, x.user_id) as user_id, 'element mismatch' as failure
    from elements as e
    full outer join expected as x
        on e.user_id = x.user_id and e.user_event_index = x.user_event_index
    where e.user_id is null
        or x.user_id is null
        or e.event_id <> x.event_id
        or e.item_id <> x.item_id
        or e.reward is distinct from x.reward
        or e.session_index <> x.session_index
),

missing_users as (
    select user_id, 'long history left out' as failure
    from events
    where user_id not in (select user_id from sequences)
    group by user_id
    having count(*) >= {{ var('min_sequence_length') }}
)

select * from mismatches
union all
select * from missing_users
