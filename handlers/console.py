"""The run console behind API Gateway: pages at /console/, its API at /console/api/.

It imports every agent so that its bundle holds every flow: the console draws the graphs
of their runs, and replies to, resumes and forks them through the engine.
"""

from handlers import approval, research, summarise  # noqa: F401  (their flows, see above)
from pflambda.console.handler import handler

__all__ = ["handler"]
