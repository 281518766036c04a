"""Example agents, each in PocketFlow's flow.py / nodes.py / utils.py convention."""
