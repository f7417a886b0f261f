{#
    The raw rows that break the contract, with every reason, the typed contract values, the whole raw row
    as JSON (extra columns and values that failed to cast included) and when they were quarantined.
#}

with

checked as (

    select * from {{ ref('stg_watch_events__checked') }}

),

source as (

    select * from {{ source('raw', 'watch_logs') }}

),

quarantined as (

    select * from checked
    where quarantine_reason is not null

),

raw_records as (

    select
        source._asft_source_file as source_file,
        source.file_row_number as source_row_number,
        to_json(source) as raw_record

    from source
    semi join quarantined
        on source._asft_source_file = quarantined.source_file
        and source.file_row_number = quarantined.source_row_number

),

final as (

    select
        quarantined.event_id,
        quarantined.user_id,
        quarantined.item_id,
        quarantined.event_ts,
        quarantined.event_date,
        quarantined.watch_seconds,
        quarantined.item_duration_seconds,
        quarantined.rating,
        quarantined.autoplay,
        quarantined.quarantine_reason,
        quarantined.source_file,
        quarantined.source_row_number,
        quarantined.source_partition_date,
        raw_records.raw_record,
        {{ run_started_at_utc() }} as quarantined_at

    from quarantined
    left join raw_records
        on quarantined.source_file = raw_records.source_file
        and quarantined.source_row_number = raw_records.source_row_number

)

select * from final
