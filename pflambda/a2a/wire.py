"""A2A objects on the wire, for protocol 1.0, 0.3 and the legacy 0.1.

``render_*`` turn :mod:`pflambda.a2a.model` objects into JSON for one version;
``parse_*`` validate what a client sent and raise :class:`InvalidParams` naming the
field. The shapes follow the A2A 1.0 proto (ProtoJSON: ``TASK_STATE_*``, ``ROLE_*``,
parts by key), the 0.3 JSON schema (``kind`` discriminators, lowercase states) and
the 0.1 samples PocketFlow's cookbook uses (parts by ``type``, ``sessionId``); 0.1
objects also carry the 0.3 fields, so that ``tasks/get`` -- a method both versions
share -- answers something either client accepts. See docs/a2a-wire.md.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pflambda.a2a.errors import A2AError, InvalidParams
from pflambda.a2a.model import (
    Artifact,
    ArtifactUpdate,
    Message,
    Part,
    StatusUpdate,
    Task,
    TaskState,
    TaskStatus,
)

__all__ = [
    "PushConfig",
    "SendConfig",
    "Version",
    "camel_keys",
    "check_text",
    "parse_message",
    "parse_send_config",
    "render_event",
    "render_task",
    "whole_number",
]


class Version(enum.StrEnum):
    """A protocol generation."""

    V1_0 = "1.0"
    V0_3 = "0.3"
    V0_1 = "0.1"


MAX_ID = 128
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


# -- rendering ----------------------------------------------------------------------


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def render_part(part: Part, v: Version) -> dict[str, Any]:
    """A part in version ``v``'s shape."""
    if v is Version.V1_0:
        if part.kind == "file":
            body = (
                {"raw": part.file_bytes} if part.file_bytes is not None else {"url": part.file_uri}
            )
            extra = {"mediaType": part.media_type, "filename": part.filename}
            return _drop_none({**body, **extra, "metadata": part.metadata})
        key = "text" if part.kind == "text" else "data"
        return _drop_none({key: getattr(part, key), "metadata": part.metadata})
    if part.kind == "text":
        doc: dict[str, Any] = {"kind": "text", "text": part.text}
    elif part.kind == "data":
        data = part.data if isinstance(part.data, dict) else {"value": part.data}
        doc = {"kind": "data", "data": data}
    else:
        file = {"bytes": part.file_bytes, "uri": part.file_uri}
        file |= {"mimeType": part.media_type, "name": part.filename}
        doc = {"kind": "file", "file": _drop_none(file)}
    if v is Version.V0_1:
        doc["type"] = doc["kind"]
    return _drop_none({**doc, "metadata": part.metadata})


def render_message(message: Message, v: Version) -> dict[str, Any]:
    """A message in version ``v``'s shape."""
    role = f"ROLE_{message.role.upper()}" if v is Version.V1_0 else message.role
    doc = {
        "messageId": message.message_id,
        "role": role,
        "parts": [render_part(p, v) for p in message.parts],
        "taskId": message.task_id,
        "contextId": message.context_id,
        "metadata": message.metadata,
    }
    if v is not Version.V1_0:
        doc["kind"] = "message"
    return _drop_none(doc)


def render_state(state: TaskState, v: Version) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` (1.0) or ``input-required`` (0.3, 0.1)."""
    if v is Version.V1_0:
        return "TASK_STATE_" + state.value.upper().replace("-", "_")
    return state.value


def render_status(status: TaskStatus, v: Version) -> dict[str, Any]:
    """A task status in version ``v``'s shape."""
    message = None if status.message is None else render_message(status.message, v)
    state = render_state(status.state, v)
    return _drop_none({"state": state, "timestamp": status.timestamp, "message": message})


def render_artifact(artifact: Artifact, v: Version, index: int = 0) -> dict[str, Any]:
    """An artifact in version ``v``'s shape."""
    doc: dict[str, Any] = {
        "artifactId": artifact.artifact_id,
        "name": artifact.name,
        "description": artifact.description,
        "parts": [render_part(p, v) for p in artifact.parts],
        "metadata": artifact.metadata,
    }
    if v is Version.V0_1:
        doc["index"] = index
    return _drop_none(doc)


def render_task(task: Task, v: Version) -> dict[str, Any]:
    """A task in version ``v``'s shape (bare, not wrapped)."""
    doc: dict[str, Any] = {
        "id": task.id,
        "contextId": task.context_id,
        "status": render_status(task.status, v),
    }
    if task.artifacts:
        doc["artifacts"] = [render_artifact(a, v, i) for i, a in enumerate(task.artifacts)]
    if task.history:
        doc["history"] = [render_message(m, v) for m in task.history]
    if task.metadata:
        doc["metadata"] = task.metadata
    if v is not Version.V1_0:
        doc["kind"] = "task"
    if v is Version.V0_1:
        doc["sessionId"] = task.context_id
    return doc


def render_event(
    event: Task | Message | StatusUpdate | ArtifactUpdate, v: Version
) -> dict[str, Any]:
    """A stream event (or a send result): wrapped by kind in 1.0, bare with ``kind`` before."""
    if isinstance(event, Task):
        key, doc = "task", render_task(event, v)
    elif isinstance(event, Message):
        key, doc = "message", render_message(event, v)
    elif isinstance(event, StatusUpdate):
        key, doc = "statusUpdate", _render_status_update(event, v)
    else:
        key, doc = "artifactUpdate", _render_artifact_update(event, v)
    return {key: doc} if v is Version.V1_0 else doc


def _render_status_update(event: StatusUpdate, v: Version) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "taskId": event.task_id,
        "contextId": event.context_id,
        "status": render_status(event.status, v),
    }
    if event.metadata:
        doc["metadata"] = event.metadata
    if v is not Version.V1_0:
        doc |= {"kind": "status-update", "final": event.final}
    if v is Version.V0_1:
        doc["id"] = event.task_id
    return doc


def _render_artifact_update(event: ArtifactUpdate, v: Version) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "taskId": event.task_id,
        "contextId": event.context_id,
        "artifact": render_artifact(event.artifact, v),
        "append": event.append,
        "lastChunk": event.last_chunk,
    }
    if event.metadata:
        doc["metadata"] = event.metadata
    if v is not Version.V1_0:
        doc["kind"] = "artifact-update"
    if v is Version.V0_1:
        doc["id"] = event.task_id
    return doc


# -- parsing ------------------------------------------------------------------------

_FREE_FORM = frozenset({"metadata", "data", "params"})
"""Keys whose values are the client's own JSON (``Struct``/``Value``): never renamed."""


def camel_keys(doc: Any, path: str) -> Any:
    """``doc`` with snake_case keys in lowerCamelCase (``task_id`` -> ``taskId``), as
    protobuf JSON parsers accept either name of a field; free-form values are kept as they
    are. A field given under both names is :class:`InvalidParams`."""
    if isinstance(doc, list):
        return [camel_keys(item, f"{path}[{i}]") for i, item in enumerate(doc)]
    if not isinstance(doc, dict):
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = _camel(key) if isinstance(key, str) else key
        if name in out:
            raise InvalidParams(f"{path}.{name} is given twice (as {name} and {key})")
        out[name] = value if name in _FREE_FORM else camel_keys(value, f"{path}.{name}")
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest) if rest else key


def check_text(doc: Any, path: str, error: type[A2AError] = InvalidParams) -> None:
    """Refuse text that is not valid Unicode (a lone UTF-16 surrogate such as ``"\\ud800"``,
    which JSON can spell but UTF-8 cannot store): ``error`` names where it is."""
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return
    except UnicodeEncodeError:
        _find_surrogate(doc, path, error)
    except (RecursionError, ValueError, TypeError):
        raise error(f"{path} is nested too deeply") from None


def _find_surrogate(doc: Any, path: str, error: type[A2AError]) -> None:
    if isinstance(doc, str):
        try:
            doc.encode("utf-8")
        except UnicodeEncodeError:
            raise error(
                f"{path} holds a lone UTF-16 surrogate: text must be valid Unicode"
            ) from None
    elif isinstance(doc, dict):
        for key, value in doc.items():
            _find_surrogate(key, f"{path} (a key)", error)
            _find_surrogate(value, f"{path}.{key}", error)
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            _find_surrogate(item, f"{path}[{i}]", error)


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidParams(f"{path}.{key} must be a {_json_name(names)}")
    return value


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = _get(doc, key, kind, path)
    if value is None:
        raise InvalidParams(f"{path}.{key} is required")
    return value


def _json_name(name: str) -> str:
    return name.replace("str", "string").replace("dict", "object").replace("list", "array")


def check_id(value: Any, path: str) -> str:
    """A client-supplied id: a string of up to 128 safe characters."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidParams(f"{path} must be a string of 1-{MAX_ID} letters, digits or ._:-")
    return value


def whole_number(value: Any, path: str) -> int | None:
    """An optional count such as ``historyLength``: ``None`` or an int >= 0."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidParams(f"{path} must be a whole number >= 0")
    return value


def parse_message(doc: Any, v: Version, path: str = "params.message") -> Message:
    """A user message sent with ``v``; parts in that version's shape."""
    if not isinstance(doc, dict):
        raise InvalidParams(f"{path} must be an object")
    role = _need(doc, "role", str, path)
    expected = "ROLE_USER" if v is Version.V1_0 else "user"
    if role != expected:
        raise InvalidParams(f"{path}.role must be {expected!r}")
    raw_parts = _need(doc, "parts", list, path)
    if not raw_parts:
        raise InvalidParams(f"{path}.parts must not be empty")
    parts = tuple(_parse_part(p, v, f"{path}.parts[{i}]") for i, p in enumerate(raw_parts))
    if v is Version.V0_1:
        message_id = _get(doc, "messageId", str, path) or ""
    else:
        message_id = check_id(_need(doc, "messageId", str, path), f"{path}.messageId")
    task_id = _get(doc, "taskId", str, path)
    context_id = _get(doc, "contextId", str, path)
    return Message(
        message_id=message_id,
        role="user",
        parts=parts,
        task_id=None if task_id is None else check_id(task_id, f"{path}.taskId"),
        context_id=None if context_id is None else check_id(context_id, f"{path}.contextId"),
        metadata=_get(doc, "metadata", dict, path),
    )


def _parse_part(doc: Any, v: Version, path: str) -> Part:
    if not isinstance(doc, dict):
        raise InvalidParams(f"{path} must be an object")
    metadata = _get(doc, "metadata", dict, path)
    if v is Version.V1_0:
        return _parse_part_v1(doc, path, metadata)
    kind = doc.get("kind", doc.get("type"))
    if kind == "text":
        return Part(text=_need(doc, "text", str, path), metadata=metadata)
    if kind == "data":
        return Part(data=_need(doc, "data", dict, path), metadata=metadata)
    if kind == "file":
        file = _need(doc, "file", dict, path)
        data, uri = _get(file, "bytes", str, path + ".file"), _get(file, "uri", str, path + ".file")
        if (data is None) == (uri is None):
            raise InvalidParams(f"{path}.file needs exactly one of bytes or uri")
        mime, name = _get(file, "mimeType", str, path), _get(file, "name", str, path)
        return Part(
            file_bytes=data, file_uri=uri, media_type=mime, filename=name, metadata=metadata
        )
    field = "kind" if v is Version.V0_3 else "type"
    raise InvalidParams(f"{path}.{field} must be 'text', 'data' or 'file'")


def _parse_part_v1(doc: dict[str, Any], path: str, metadata: dict[str, Any] | None) -> Part:
    present = [k for k in ("text", "data", "raw", "url") if doc.get(k) is not None]
    if len(present) != 1:
        raise InvalidParams(f"{path} needs exactly one of text, data, raw or url")
    media, name = _get(doc, "mediaType", str, path), _get(doc, "filename", str, path)
    key = present[0]
    if key == "text":
        return Part(text=_need(doc, "text", str, path), metadata=metadata)
    if key == "data":
        return Part(data=doc["data"], metadata=metadata)
    value = _need(doc, key, str, path)
    if key == "raw":
        return Part(file_bytes=value, media_type=media, filename=name, metadata=metadata)
    return Part(file_uri=value, media_type=media, filename=name, metadata=metadata)


@dataclass(frozen=True)
class PushConfig:
    """Where to POST a task's state changes."""

    url: str
    id: str | None = None
    token: str | None = None
    scheme: str | None = None
    credentials: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Storage form."""
        return _drop_none(
            {
                "url": self.url,
                "id": self.id,
                "token": self.token,
                "scheme": self.scheme,
                "credentials": self.credentials,
            }
        )


@dataclass(frozen=True)
class SendConfig:
    """How the client wants a send handled."""

    blocking: bool = True
    history_length: int | None = None
    push: PushConfig | None = None


def parse_push_config(doc: Any, v: Version, path: str) -> PushConfig:
    """A push config in ``v``'s shape (1.0: flat with ``authentication.scheme``)."""
    if not isinstance(doc, dict):
        raise InvalidParams(f"{path} must be an object")
    url = _need(doc, "url", str, path)
    auth = _get(doc, "authentication", dict, path) or {}
    if v is Version.V1_0:
        scheme = _get(auth, "scheme", str, path + ".authentication")
    else:
        schemes = _get(auth, "schemes", list, path + ".authentication") or []
        scheme = str(schemes[0]) if schemes else None
    config_id = _get(doc, "id", str, path)
    token = _header_safe(_get(doc, "token", str, path), f"{path}.token")
    credentials = _get(auth, "credentials", str, path + ".authentication")
    return PushConfig(
        url=url,
        id=None if config_id is None else check_id(config_id, f"{path}.id"),
        token=token,
        scheme=_header_safe(scheme, f"{path}.authentication.scheme"),
        credentials=_header_safe(credentials, f"{path}.authentication.credentials"),
    )


def _header_safe(value: str | None, path: str) -> str | None:
    """A value sent back in an HTTP header: no CR, LF or other control characters."""
    if value is not None and any(ch < " " or ch == "\x7f" for ch in value):
        raise InvalidParams(f"{path} must not contain control characters (CR, LF...)")
    return value


def parse_send_config(doc: Any, v: Version, path: str = "params.configuration") -> SendConfig:
    """``configuration`` of a send: blocking (1.0: not ``returnImmediately``), history, push."""
    if doc is None:
        return SendConfig()
    if not isinstance(doc, dict):
        raise InvalidParams(f"{path} must be an object")
    history = whole_number(doc.get("historyLength"), f"{path}.historyLength")
    if v is Version.V1_0:
        immediate = _get(doc, "returnImmediately", bool, path)
        blocking = not immediate if immediate is not None else True
        push_doc = doc.get("taskPushNotificationConfig")
    else:
        flag = _get(doc, "blocking", bool, path)
        blocking = True if flag is None else flag
        push_doc = doc.get("pushNotificationConfig")
    push = None if push_doc is None else parse_push_config(push_doc, v, f"{path}.push")
    return SendConfig(blocking=blocking, history_length=history, push=push)


def render_push_config(task_id: str, config: PushConfig, v: Version) -> dict[str, Any]:
    """A stored push config as the client sees it (credentials are never echoed)."""
    auth: dict[str, Any] | None = None
    if config.scheme:
        auth = {"scheme": config.scheme} if v is Version.V1_0 else {"schemes": [config.scheme]}
    inner = _drop_none({"id": config.id, "url": config.url, "token": config.token})
    if auth:
        inner["authentication"] = auth
    if v is Version.V1_0:
        return {"taskId": task_id, **inner}
    return {"taskId": task_id, "pushNotificationConfig": inner}
