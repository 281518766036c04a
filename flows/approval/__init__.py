"""An agent that drafts a plan and waits for a human to approve it before acting."""
