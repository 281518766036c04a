"""A research agent: it searches the web until it can answer, then answers."""
