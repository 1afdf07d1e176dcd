"""Job policies: retries, timeouts, unique jobs, concurrency and rate limits."""
