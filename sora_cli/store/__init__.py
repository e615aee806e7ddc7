"""The job store: repository, leases, schema and migrations, SQLite and PostgreSQL."""
