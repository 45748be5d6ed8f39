"""Background jobs: a PostgreSQL-backed queue and its worker."""
