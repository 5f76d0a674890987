"""The pure core: events as values, identity merges, matching, scoring, lifecycle, triggers, sequences, actions and per-prospect state. Functions of (state, input, now); no IO, no wall clock."""
