"""L5: the runner: the small process beside every agent program (DESIGN.md §5)."""
