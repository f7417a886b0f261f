"""The Feast feature store: offline tables, registry and online store."""
