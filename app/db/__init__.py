"""Storage: the Tortoise models, the connection, migrations and retries of transient failures."""
