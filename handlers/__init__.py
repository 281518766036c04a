"""Lambda entry points: one module per agent, plus the shared worker. Glue only."""
