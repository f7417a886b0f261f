{# The watch events that pass every contract check: the contract columns plus event_date and lineage. #}

with

checked as (

    select * from {{ ref('stg_watch_events__checked') }}

),

final as (

    select
        event_id,
        user_id,
        item_id,
        event_ts,
        event_date,
        watch_seconds,
        item_duration_seconds,
        cast(rating as tinyint) as rating,
        autoplay,
        source_file

    from checked
    where quarantine_reason is null

)

select * from final
