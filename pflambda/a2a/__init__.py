"""The A2A protocol: agent card, JSON-RPC dispatcher, tasks as durable runs, push notifications."""
