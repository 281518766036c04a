"""The run console: every run in a browser -- list, graph, timeline, state, actions.

:class:`~pflambda.console.app.Console` is an HTTP app over an engine's store, served
by ``pflambda local`` at ``/console/`` and deployed behind API Gateway by
:mod:`pflambda.console.handler`. See docs/console.md.
"""
