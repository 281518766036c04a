"""Where runs and their checkpoints live: a Store protocol, in memory and on DynamoDB."""

from pflambda.stores.base import Checkpoint, CheckpointInfo, Page, RunRecord, RunStatus, Store

__all__ = ["Checkpoint", "CheckpointInfo", "Page", "RunRecord", "RunStatus", "Store"]
