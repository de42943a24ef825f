"""`make bench`: measured costs of the operator (not timed tests)."""
