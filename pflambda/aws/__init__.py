"""The AWS edge: event parsing, Lambda handlers and config from the environment.

The only place boto3 clients are made.
"""
