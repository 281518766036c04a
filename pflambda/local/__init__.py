"""Local development: the embedded AWS emulator, the HTTP server and the SQS poller."""
