"""The dbt project (warehouse models, dbt tests as checks) and the data report."""
