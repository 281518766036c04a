"""A batch summariser: summarise each document (or paragraph), then combine."""
