{#
    Every raw watch-log row, typed, with the contract checks applied: quarantine_reason is null for good rows
    and otherwise lists every rule the row breaks, joined with '; '. Nothing is dropped here;
    stg_watch_events keeps the good rows and quarantine_watch_events the others.
#}

with

source as (

    select * from {{ source('raw', 'watch_logs') }}

),

typed as (

    select
        try_cast(event_id as varchar) as event_id,
        try_cast(user_id as varchar) as user_id,
        try_cast(item_id as varchar) as item_id,
        try_cast(event_ts as timestamptz) as event_ts,
        try_cast(watch_seconds as double) as watch_seconds,
        try_cast(item_duration_seconds as double) as item_duration_seconds,
        try_cast(rating as integer) as rating,
        try_cast(autoplay as boolean) as autoplay,
        _asft_source_file as source_file,
        file_row_number as source_row_number,
        try_cast(
            nullif(regexp_extract(_asft_source_file, 'date=(\d{4}-\d{2}-\d{2})', 1), '') as date
        ) as source_partition_date

    from source

),

row_checks as (

    select
        *,
        nullif(concat_ws('; ',
            case when event_id is null or trim(event_id) = '' then 'missing_event_id' end,
            case when user_id is null or trim(user_id) = '' then 'missing_user_id' end,
            case when item_id is null or trim(item_id) = '' then 'missing_item_id' end,
            case when event_ts is null then 'missing_event_ts' end,
            case
                when event_ts > {{ run_started_at_utc() }}
                    + to_hours({{ var('future_tolerance_hours') | int }})
                    then 'future_event_ts'
            end,
            case
                when event_ts < timezone('UTC', cast('{{ var("min_event_ts") }}' as timestamp))
                    then 'event_ts_before_floor'
            end,
            case when not isfinite(watch_seconds) then 'non_finite_watch_seconds' end,
            case when watch_seconds < 0 then 'negative_watch_seconds' end,
            case when not isfinite(item_duration_seconds) then 'non_finite_duration' end,
            case when item_duration_seconds <= 0 then 'non_positive_duration' end,
            case
                when isfinite(watch_seconds)
                    and isfinite(item_duration_seconds)
                    and item_duration_seconds > 0
                    and watch_seconds > item_duration_seconds * {{ var('watch_seconds_slack') }}
                    then 'watch_exceeds_duration'
            end,
            case when rating not between 1 and 5 then 'rating_out_of_range' end
        ), '') as row_quarantine_reason

    from typed

),

duplicate_checks as (

    -- Among rows sharing an event_id, keep one: a row that passes the other checks if any,
    -- then the earliest event_ts, then the first file (by name) and row; the rest are duplicates.
    select
        *,
        case
            when event_id is not null and trim(event_id) <> ''
                then row_number() over (
                    partition by event_id
                    order by
                        row_quarantine_reason is not null,
                        event_ts nulls last,
                        source_file,
                        source_row_number
                )
        end as event_id_rank

    from row_checks

),

final as (

    select
        event_id,
        user_id,
        item_id,
        event_ts,
        {{ utc_date('event_ts') }} as event_date,
        watch_seconds,
        item_duration_seconds,
        rating,
        autoplay,
        source_file,
        source_row_number,
        source_partition_date,
        nullif(concat_ws('; ',
            row_quarantine_reason,
            case when event_id_rank > 1 then 'duplicate_event_id' end
        ), '') as quarantine_reason

    from duplicate_checks

)

select * from final
