"""Great Expectations gates on the warehouse tables, and the data quality report (Data Docs)."""
