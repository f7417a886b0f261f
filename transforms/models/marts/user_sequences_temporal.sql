{#
    Per user and temporal split, the user's history up to the end of that split as parallel lists in
    (event_ts, event_id) order: 'train' holds the train events, 'valid' the train + valid events, 'test' all
    events. The last n_target_events elements are the split's own events (the targets); the rest is history.
    A (user, split) row exists when the user has at least one event in the split and the list is at least
    var('min_sequence_length') long.
    The split is monotone in event_ts, so each split's list is a prefix of the user's whole sequence.
#}

with

sequences as (

    select * from {{ ref('user_sequences') }}

),

events as (

    select * from {{ ref('split_temporal_events') }}

),

split_counts as (

    select
        user_id,
        count(*) filter (where split = 'train') as n_train,
        count(*) filter (where split = 'valid') as n_valid,
        count(*) filter (where split = 'test') as n_test

    from events
    group by user_id

),

splits as (

    select * from (values ('train'), ('valid'), ('test')) as splits (split)

),

per_split as (

    select
        sequences.*,
        splits.split,
        case splits.split
            when 'train' then split_counts.n_train
            when 'valid' then split_counts.n_train + split_counts.n_valid
            else split_counts.n_train + split_counts.n_valid + split_counts.n_test
        end as prefix_length,
        case splits.split
            when 'train' then split_counts.n_train
            when 'valid' then split_counts.n_valid
            else split_counts.n_test
        end as n_target_events

    from sequences
    inner join split_counts
        on sequences.user_id = split_counts.user_id
    cross join splits

),

final as (

    select
        user_id,
        split,
        list_slice(event_ids, 1, prefix_length) as event_ids,
        list_slice(item_ids, 1, prefix_length) as item_ids,
        list_slice(timestamps, 1, prefix_length) as timestamps,
        list_slice(rewards, 1, prefix_length) as rewards,
        list_slice(session_indexes, 1, prefix_length) as session_indexes,
        prefix_length as sequence_length,
        n_target_events,
        prefix_length - n_target_events as n_history_events

    from per_split
    where n_target_events >= 1
        and prefix_length >= {{ var('min_sequence_length') }}

)

select * from final
