"""Flows the engine tests run durably (importable as ``tests.flows.<module>:<factory>``)."""
