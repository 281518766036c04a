"""The AWS edge: event parsing, Lambda handlers, config from the environment; the only place boto3 clients are made."""
