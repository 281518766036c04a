"""The TCK conformance agent, served by ``pflambda local`` from this directory."""
