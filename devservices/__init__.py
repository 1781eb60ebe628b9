"""Real services started on loopback for tests, benchmarks and local development (not shipped)."""
