"""Durable engine: runner, cursor, codec."""
