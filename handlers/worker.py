"""The shared SQS worker: continues every agent's runs, and delivers their push notifications.

It finds the agents by importing every module of this package (no list to keep up).
"""

from pflambda.a2a.agents import shared_worker

handler = shared_worker("handlers")
