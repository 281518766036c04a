"""ListTasks: one principal's tasks of one agent, a page at a time, from the indexes.

The store lists runs by owner and agent, newest update first, with the run status in the
index key; the A2A states that are finer than a run status (``submitted`` is a running
run nobody has picked up; ``rejected`` and ``auth-required`` are what the flow asked for)
are told apart by the run's ``summary``, which the index carries. So a page costs one
Query per index shard plus a few, whatever other principals do, and each task is
rendered from its index entry: no state is read unless the caller asks for history
(one record read per task) or artifacts (one state read per task).

``totalSize`` is exact: a count of the caller's matching index entries (``Select=COUNT``
on DynamoDB: it reads every one of them, at 0.5 RCU per 4 KB; see docs/deploy.md). For
the finer states it lists the matching runs instead (it reads the same entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from pflambda.a2a.model import Task, TaskState
from pflambda.stores.base import RunRecord, RunStatus

if TYPE_CHECKING:
    from pflambda.a2a.tasks import Caller, TaskService

__all__ = ["ListQuery", "TaskPage", "list_tasks"]

RUN_STATUS = {
    TaskState.SUBMITTED: RunStatus.RUNNING,
    TaskState.WORKING: RunStatus.RUNNING,
    TaskState.INPUT_REQUIRED: RunStatus.PAUSED,
    TaskState.AUTH_REQUIRED: RunStatus.PAUSED,
    TaskState.COMPLETED: RunStatus.COMPLETED,
    TaskState.FAILED: RunStatus.FAILED,
    TaskState.REJECTED: RunStatus.FAILED,
    TaskState.CANCELED: RunStatus.CANCELLED,
}
"""The run status behind each task state (the index key serves the filter)."""


class _Filters(TypedDict):
    owner: str
    agent: str
    context_id: str | None
    status: RunStatus | None


@dataclass(frozen=True)
class ListQuery:
    """ListTasks' parameters, validated by the transport."""

    context_id: str | None = None
    status: TaskState | None = None
    page_size: int = 50
    page_token: str | None = None
    history_length: int | None = None
    include_artifacts: bool = False


@dataclass(frozen=True)
class TaskPage:
    """One page of tasks, the token for the next (``None`` at the end), the total."""

    tasks: list[Task]
    next_token: str | None
    total_size: int


def list_tasks(service: TaskService, caller: Caller, query: ListQuery) -> TaskPage:
    """ListTasks for ``caller`` on ``service``'s agent."""
    store = service.engine.store
    filters = _Filters(
        owner=caller.principal,
        agent=service.agent.name,
        context_id=query.context_id,
        status=RUN_STATUS[query.status] if query.status is not None else None,
    )
    wanted = query.status
    records: list[RunRecord] = []
    token = query.page_token
    while True:  # a finer state may skip some runs of a page: read on until it is full
        page = store.list_runs(limit=query.page_size - len(records), next_token=token, **filters)
        records += [r for r in page.runs if wanted is None or service.state_of(r) is wanted]
        token = page.next_token
        if token is None or len(records) == query.page_size:
            break
    tasks = [_render(service, record, query) for record in records]
    if token is None and query.page_token is None:
        total = len(tasks)  # the first page is everything: nothing to count
    elif wanted is None or _exact_in_key(wanted):
        total = store.count_runs(**filters)
    else:
        total = _count_listed(service, filters, wanted)
    return TaskPage(tasks, token, total)


def _exact_in_key(state: TaskState) -> bool:
    """Whether the run status alone tells this state (no other state shares it)."""
    return sum(1 for s in RUN_STATUS.values() if s == RUN_STATUS[state]) == 1


def _count_listed(service: TaskService, filters: _Filters, wanted: TaskState) -> int:
    store, total, token = service.engine.store, 0, None
    while True:
        page = store.list_runs(limit=1000, next_token=token, **filters)
        total += sum(1 for r in page.runs if service.state_of(r) is wanted)
        token = page.next_token
        if token is None:
            return total


def _render(service: TaskService, record: RunRecord, query: ListQuery) -> Task:
    if query.history_length:  # the history lives in attrs, which the index leaves out
        record = service.engine.store.get_run(record.run_id)
    return service.task(
        record,
        history_length=query.history_length or 0,
        artifacts=query.include_artifacts,
        closing=query.include_artifacts,
    )
