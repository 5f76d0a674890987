"""Dry runs of history: event sources (JSON Lines, gzip, stdin), the duplicate filter, the in-memory world, the replay driver, its summary and `explain`."""
