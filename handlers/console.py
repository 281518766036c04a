"""The run console behind API Gateway: pages at /console/, its API at /console/api/."""

from pflambda.console.handler import handler

__all__ = ["handler"]
