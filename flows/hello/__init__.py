"""The smallest durable flow: draft a note, then review it."""
