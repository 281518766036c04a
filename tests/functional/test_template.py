"""template.yaml agrees with the code it deploys.

Each ``*_problems`` function reads the parsed template and returns what is wrong, in
words; the tests assert there is nothing, and that each checker does notice a broken
copy of the template (a checker that cannot fail proves nothing). What the code needs
is read from the code itself: handler attributes by importing them, environment
variables and AWS calls by scanning the source, the table from ``TABLE_SCHEMA``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pflambda import limits
from pflambda.console.handler import handler as console_handler
from pflambda.engine.runner import Engine
from pflambda.stores.dynamodb import TABLE_SCHEMA, TTL_ATTRIBUTE

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

Template = dict[str, Any]


# -- reading CloudFormation YAML ---------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that reads ``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``... as the long
    form CloudFormation gives them (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> Template:
    """A CloudFormation/SAM template as plain dicts and lists."""
    loaded: Template = yaml.load(path.read_text(), Loader=CfnLoader)
    return loaded


def functions(template: Template) -> dict[str, dict[str, Any]]:
    """The template's Lambda functions, by logical id."""
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def refs(value: Any) -> Iterator[str]:
    """Every logical id or parameter a value refers to (Ref, GetAtt, ${...} in Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner.split(".")[0]
            elif key == "Fn::GetAtt":
                yield inner[0]
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                yield from (m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
            else:
                yield from refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from refs(inner)


def handler_ref(handler: str) -> tuple[str, str]:
    """``handlers/research.handler`` -> (``handlers.research``, ``handler``), as Lambda
    reads it."""
    module, _, attribute = handler.rpartition(".")
    return module.replace("/", "."), attribute


# -- handlers --------------------------------------------------------------------------


def handler_problems(template: Template) -> list[str]:
    """Every function's Handler names a callable that imports from the repository."""
    problems = []
    for name, resource in functions(template).items():
        handler = resource["Properties"].get("Handler", "")
        module_name, attribute = handler_ref(handler)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            problems.append(f"{name}: Handler {handler!r}: cannot import {module_name}: {exc}")
            continue
        if not callable(getattr(module, attribute, None)):
            problems.append(
                f"{name}: Handler {handler!r}: {module_name} has no callable {attribute}"
            )
    return problems


# -- environment -------------------------------------------------------------------------

ENV_SOURCES = (
    "pflambda/aws/config.py",
    "pflambda/aws/invoke.py",
    "pflambda/a2a/auth.py",
    "pflambda/console/handler.py",
    "flows/llm.py",
)
"""The modules that read the deployment's configuration from os.environ."""

OPTIONAL_ENV = {
    "PFLAMBDA_QUEUE": "the queue name, only used when PFLAMBDA_QUEUE_URL is missing",
    "PFLAMBDA_PREFIX": "starts the default names; the template sets every name itself",
    "PFLAMBDA_MARGIN_MS": "the deadline margin; the default (30 s) fits both timeouts",
    "PFLAMBDA_TTL_DAYS": "retention; the template sets it from RetentionDays",
    "PFLAMBDA_TOKEN_SECRET": "set by the template only when AuthMode is bearer",
    "PFLAMBDA_TOKEN_PARAMETER": "an SSM alternative to PFLAMBDA_TOKEN_SECRET",
    "PFLAMBDA_LLM": "forces a model; unset, BEDROCK_MODEL_ID decides",
    "BEDROCK_REGION": "Bedrock's region; unset, the function's own",
}
"""Variables the code reads that a deployment may leave unset, and why."""

LOCAL_ONLY_ENV = {
    "PFLAMBDA_ALLOW_PRIVATE_PUSH": "lets push notifications reach private addresses",
    "PFLAMBDA_TOKEN": "a plain-text token: on AWS tokens come from Secrets Manager",
    "PFLAMBDA_DIR": "the embedded SQLite store's directory: Lambda uses DynamoDB",
    "PFLAMBDA_SITE": "the local twin's identity: on AWS a run pins the function's version",
}
"""Variables for local development that must never be set on AWS."""

POWERTOOLS_ENV = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL")


def code_env_vars() -> set[str]:
    """The PFLAMBDA_*/BEDROCK_* names the configuration modules read (as string literals)."""
    found: set[str] = set()
    for source in ENV_SOURCES:
        text = (ROOT / source).read_text()
        found |= set(re.findall(r"[\"']((?:PFLAMBDA|BEDROCK)_[A-Z0-9_]+)[\"']", text))
    return found


def template_env(template: Template) -> dict[str, Any]:
    """The variables every function gets (Globals), merged with each function's own."""
    env = dict(template["Globals"]["Function"].get("Environment", {}).get("Variables", {}))
    for resource in functions(template).values():
        own = resource["Properties"].get("Environment", {}).get("Variables", {})
        env.update(own)
    return env


def env_problems(template: Template, code_vars: set[str] | None = None) -> list[str]:
    """Every variable the code needs on AWS is set; nothing unknown or local-only is."""
    code_vars = code_env_vars() if code_vars is None else code_vars
    env = template_env(template)
    problems = []
    for name in sorted(code_vars - set(OPTIONAL_ENV) - set(LOCAL_ONLY_ENV) - set(env)):
        problems.append(f"{name} is read by the code but not set in Globals")
    for name in sorted(set(env) & set(LOCAL_ONLY_ENV)):
        problems.append(f"{name} must not be set on AWS: {LOCAL_ONLY_ENV[name]}")
    for name in sorted(env):
        if name.startswith(("PFLAMBDA_", "BEDROCK_")) and name not in code_vars:
            problems.append(f"{name} is set but no code reads it (typo?)")
    for name in sorted((set(OPTIONAL_ENV) | set(LOCAL_ONLY_ENV)) - code_vars):
        problems.append(f"{name} is allow-listed in this test but no code reads it any more")
    for name in POWERTOOLS_ENV:
        if name not in env:
            problems.append(f"{name} is not set in Globals")
    return problems


# -- permissions -----------------------------------------------------------------------

AWS_MODULES = {
    "dynamodb": ("pflambda/stores/[d_]*dynamo*.py", "RunsTable"),
    "s3": ("pflambda/blobs/s3.py", "StateBucket"),
    "sqs": ("pflambda/queues/sqs.py", "WorkQueue"),
}
"""service -> (a glob of the modules that call it, the resource its calls go to)."""

BATCH_ACTIONS = {
    "send_message_batch": "SendMessage",
    "delete_message_batch": "DeleteMessage",
    "delete_objects": "DeleteObject",
    "list_objects_v2": "ListBucket",
}
"""Calls IAM authorises as another action (a batch as the single action)."""

REAPER_ONLY = {"s3:DeleteObject", "dynamodb:BatchWriteItem"}
"""Deletes: only ReaperFunction may make them (its own policy), and no other function."""

REAPER_NEEDS = {
    "dynamodb:GetItem": "RunsTable",
    "dynamodb:Query": "RunsTable",
    "dynamodb:BatchWriteItem": "RunsTable",
    "s3:ListBucket": "StateBucket",
    "s3:DeleteObject": "StateBucket",
}
"""What pflambda.engine.retention.reap calls: the run's record, its items, its objects."""

POLLED_BY_EVENT_SOURCE = {"receive_message", "delete_message_batch", "change_message_visibility"}
"""SQS calls only the local poller makes (SQSQueue.receive/ack/release); on AWS the
worker's SQS event source polls, with the permissions SAM grants for it."""


def _camel(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def required_actions() -> dict[str, set[str]]:
    """IAM action -> the logical id of the resource it must be allowed on, from the calls
    the AWS modules make through their injected client (``self._client.<call>(``)."""
    needed: dict[str, set[str]] = {}
    transact = re.findall(
        r"[\"'](Put|Update|Delete|ConditionCheck)[\"']\s*:",
        (ROOT / "pflambda/stores/_fanout_items.py").read_text(),
    )
    for service, (source, resource) in AWS_MODULES.items():
        code = "".join(path.read_text() for path in sorted(ROOT.glob(source)))
        assert code, f"no module matches {source}"
        calls = set(re.findall(r"self\._client\.(\w+)\(", code)) - {"get_paginator"}
        calls |= set(re.findall(r"self\._client\.get_paginator\([\"'](\w+)[\"']", code))
        for call in calls - POLLED_BY_EVENT_SOURCE:
            if call == "transact_write_items":  # authorised per item: Put -> PutItem...
                actions = {f"{service}:{kind}Item" for kind in transact}
            else:
                actions = {f"{service}:{BATCH_ACTIONS.get(call, _camel(call))}"}
            for action in actions:
                needed.setdefault(action, set()).add(resource)
    return needed


def statements(template: Template, function: dict[str, Any]) -> list[dict[str, Any]]:
    """The unconditional policy statements a function gets (inline, or a managed policy
    of this template by Ref). Statements under Fn::If are left out: what the code always
    needs must not depend on a parameter."""
    found = []
    for policy in function["Properties"].get("Policies", []):
        document = None
        if isinstance(policy, dict) and set(policy) == {"Ref"}:
            target = template["Resources"].get(policy["Ref"], {})
            if target.get("Type") == "AWS::IAM::ManagedPolicy":
                document = target["Properties"]["PolicyDocument"]
        elif isinstance(policy, dict) and "Statement" in policy:
            document = policy
        if document is not None:
            found += [s for s in document["Statement"] if "Effect" in s]
    return found


def _allows(statement: dict[str, Any], action: str, resource: str) -> bool:
    actions = statement["Action"]
    actions = [actions] if isinstance(actions, str) else actions
    return (
        statement["Effect"] == "Allow"
        and action in actions
        and resource in set(refs(statement["Resource"]))
    )


def iam_problems(template: Template) -> list[str]:
    """Each function may make every AWS call the engine makes, on the right resource;
    the worker polls the work queue; Bedrock is allowed exactly when a model is set."""
    problems = []
    needed = required_actions()
    assert set(needed) >= REAPER_ONLY, "the code no longer deletes: update REAPER_ONLY"
    for name, function in functions(template).items():
        granted = statements(template, function)
        if name == "ReaperFunction":
            wanted = {action: {resource} for action, resource in REAPER_NEEDS.items()}
        else:
            wanted = {k: v for k, v in needed.items() if k not in REAPER_ONLY}
            for action in sorted(REAPER_ONLY):
                if any(action in json.dumps(s) for s in granted):
                    problems.append(f"{name} may {action}: only ReaperFunction deletes")
        for action, resources in sorted(wanted.items()):
            for resource in sorted(resources):
                if not any(_allows(s, action, resource) for s in granted):
                    problems.append(f"{name} may not {action} on {resource}")
    worker = functions(template).get("WorkerFunction", {"Properties": {}})
    sqs_events = [
        event["Properties"]
        for event in worker["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    if not any("WorkQueue" in refs(e["Queue"]) for e in sqs_events):
        problems.append("WorkerFunction has no SQS event on WorkQueue")
    for event in sqs_events:
        if "ReportBatchItemFailures" not in event.get("FunctionResponseTypes", []):
            problems.append("the worker's SQS event must report batch item failures")
    model = json.dumps(template["Resources"].get("RuntimePolicy", {}))
    if "bedrock:InvokeModel" not in model or "UseBedrock" not in model:
        problems.append("bedrock:InvokeModel is not granted under the UseBedrock condition")
    return problems


def local_only_calls() -> list[str]:
    """Uses of the polling side of a Queue outside the local poller (which would need
    permissions no function has)."""
    uses = []
    for path in (ROOT / "pflambda").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("pflambda/local/", "pflambda/queues/")):
            continue
        if re.search(r"\.(receive|ack|release)\(", path.read_text()):
            uses.append(relative)
    return uses


# -- the table, the queue, the API -------------------------------------------------------


def _canonical(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps(sorted(_canonical(v) for v in value))
    if isinstance(value, dict):
        return json.dumps({k: _canonical(v) for k, v in sorted(value.items())})
    return json.dumps(value)


def table_problems(template: Template) -> list[str]:
    """RunsTable is what ``create_table`` makes, plus point-in-time recovery and SSE."""
    table = template["Resources"]["RunsTable"]["Properties"]
    problems = [
        f"RunsTable {key} differs from TABLE_SCHEMA: {table.get(key)!r} != {value!r}"
        for key, value in TABLE_SCHEMA.items()
        if _canonical(table.get(key)) != _canonical(value)
    ]
    ttl = table.get("TimeToLiveSpecification", {})
    if ttl != {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}:
        problems.append(f"RunsTable TTL must be enabled on {TTL_ATTRIBUTE!r}, got {ttl!r}")
    pitr = table.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled") is not True:
        problems.append("RunsTable needs point-in-time recovery")
    if table.get("SSESpecification", {}).get("SSEEnabled") is not True:
        problems.append("RunsTable needs SSE")
    return problems


def queue_problems(template: Template) -> list[str]:
    """Redrive after the worker's own attempts; visibility 6x the worker's timeout."""
    queue = template["Resources"]["WorkQueue"]["Properties"]
    worker = functions(template)["WorkerFunction"]["Properties"]
    timeout = worker.get("Timeout", template["Globals"]["Function"]["Timeout"])
    attempts = inspect.signature(Engine.__init__).parameters["max_attempts"].default
    problems = []
    receives = queue["RedrivePolicy"]["maxReceiveCount"]
    if receives != attempts + 1:
        problems.append(
            f"WorkQueue maxReceiveCount is {receives}: the worker fails a chunk itself on "
            f"receive {attempts + 1} (max_attempts={attempts}), so it must be {attempts + 1}"
        )
    if receives != limits.MAX_RECEIVES:
        problems.append(
            f"WorkQueue maxReceiveCount is {receives}, but pflambda.limits.MAX_RECEIVES "
            f"(the emulator's and create_queue's) is {limits.MAX_RECEIVES}: keep them equal"
        )
    if "WorkDeadLetterQueue" not in refs(queue["RedrivePolicy"]["deadLetterTargetArn"]):
        problems.append("WorkQueue must redrive to WorkDeadLetterQueue")
    if queue["VisibilityTimeout"] < 6 * timeout:
        problems.append(
            f"WorkQueue VisibilityTimeout {queue['VisibilityTimeout']} < 6 x worker timeout {timeout}"
        )
    if queue.get("MaximumMessageSize") != limits.SQS_MAX_MESSAGE_BYTES:
        problems.append(
            "WorkQueue MaximumMessageSize must be pflambda.limits.SQS_MAX_MESSAGE_BYTES"
        )
    return problems


def api_problems(template: Template) -> list[str]:
    """Each agent's function serves /agents/<its agent's name> and everything under it:
    in its Api events, in the OpenAPI body (integration to that function), and in an
    Output URL."""
    problems = []
    body = template["Resources"]["Api"]["Properties"]["DefinitionBody"]
    outputs = json.dumps(template.get("Outputs", {}))
    for name, function in functions(template).items():
        events = function["Properties"].get("Events", {}).values()
        api_events = [e["Properties"] for e in events if e["Type"] == "Api"]
        if not api_events:
            continue
        module_name, attribute = handler_ref(function["Properties"]["Handler"])
        module = importlib.import_module(module_name)
        if getattr(module, attribute, None) is console_handler:
            problems += console_api_problems(template, name, api_events)
            continue
        agent = getattr(module, "agent", None)
        if agent is None:
            problems.append(f"{name}: {module_name} defines no agent")
            continue
        base = f"/agents/{agent.name}"
        for path in (base, base + "/{proxy+}"):
            if not any(e["Path"] == path and e["Method"].upper() == "ANY" for e in api_events):
                problems.append(f"{name} has no ANY {path} event")
            if any("Api" not in refs(e.get("RestApiId")) for e in api_events):
                problems.append(f"{name}: every Api event must use RestApiId: !Ref Api")
            method = body["paths"].get(path, {}).get("x-amazon-apigateway-any-method", {})
            uri = method.get("x-amazon-apigateway-integration", {}).get("uri")
            if f"{name}Aliaslive" not in set(refs(uri)):
                problems.append(f"the API body does not send {path} to {name}'s alias live")
            if "security" not in method:
                problems.append(f"the API body sets no (conditional) security on {path}")
        if f"{base}/" not in outputs:
            problems.append(f"no Output gives the A2A URL of agent {agent.name!r}")
    return problems


CONSOLE_PATHS = {"/console": False, "/console/{proxy+}": False, "/console/api/{proxy+}": True}
"""The run console's paths, and whether each is guarded (its API is; its pages are not)."""


def console_api_problems(template: Template, name: str, api_events: list[Any]) -> list[str]:
    """The console function serves its pages open and its API behind the agents' auth."""
    problems = []
    body = template["Resources"]["Api"]["Properties"]["DefinitionBody"]
    guard = None
    for agent_path, method in body["paths"].items():
        if agent_path.startswith("/agents/"):
            guard = method["x-amazon-apigateway-any-method"].get("security")
    for path, guarded in CONSOLE_PATHS.items():
        if not any(e["Path"] == path and e["Method"].upper() == "ANY" for e in api_events):
            problems.append(f"{name} has no ANY {path} event")
        method = body["paths"].get(path, {}).get("x-amazon-apigateway-any-method", {})
        uri = method.get("x-amazon-apigateway-integration", {}).get("uri")
        if name not in set(refs(uri)):
            problems.append(f"the API body does not send {path} to {name}")
        if guarded and method.get("security") != guard:
            problems.append(f"the console API {path} must have the agents' security")
        if not guarded and "security" in method:
            problems.append(f"the console pages {path} carry no data and need no security")
    if "/console/" not in json.dumps(template.get("Outputs", {})):
        problems.append("no Output gives the console's URL")
    return problems


def runtime_problems(template: Template) -> list[str]:
    """python3.12 on arm64, built by the Makefile, with the runtime dependencies only."""
    problems = []
    glob = template["Globals"]["Function"]
    if glob.get("Runtime") != "python3.12" or glob.get("Architectures") != ["arm64"]:
        problems.append("Globals must set Runtime python3.12 and Architectures [arm64]")
    for name, function in functions(template).items():
        if function.get("Metadata", {}).get("BuildMethod") != "makefile":
            problems.append(f"{name} must use BuildMethod: makefile (see Makefile build-%Function)")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = sorted(pyproject["project"]["dependencies"])
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    listed = sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    if listed != wanted:
        problems.append(f"requirements.txt {listed} != pyproject dependencies {wanted}")
    lines = (ROOT / "infra/layer-requirements.txt").read_text().splitlines()
    layered = sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    if layered != [w for w in wanted if not w.startswith("boto3")]:
        problems.append(f"the layer's {layered} != pyproject dependencies but boto3")
    layers = [
        n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"
    ]
    if len(layers) != 1 or glob.get("Layers") != [{"Ref": layers[0]}]:
        problems.append("Globals must give every function the one dependency layer")
    for name in layers:
        layer = template["Resources"][name]
        if layer.get("Metadata", {}).get("BuildMethod") != "makefile":
            problems.append(f"{name} must use BuildMethod: makefile (see Makefile build-{name})")
    return problems


def samconfig_problems(template: Template) -> list[str]:
    """infra/samconfig.toml deploys with IAM capability and only this template's parameters."""
    config = tomllib.loads((ROOT / "infra/samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    problems = []
    if deploy.get("capabilities") != "CAPABILITY_IAM" or deploy.get("resolve_s3") is not True:
        problems.append("samconfig deploy needs capabilities CAPABILITY_IAM and resolve_s3")
    overrides = dict(re.findall(r'(\w+)="([^"]*)"', deploy.get("parameter_overrides", "")))
    for name, value in overrides.items():
        parameter = template["Parameters"].get(name)
        if parameter is None:
            problems.append(f"samconfig overrides unknown parameter {name}")
        elif value not in parameter.get("AllowedValues", [value]):
            problems.append(f"samconfig sets {name}={value!r}, not one of its AllowedValues")
    return problems


def agent_functions(template: Template) -> list[str]:
    """The functions that start runs: those whose handler module defines an agent."""
    found = []
    for name, function in functions(template).items():
        module_name, _ = handler_ref(function["Properties"]["Handler"])
        if getattr(importlib.import_module(module_name), "agent", None) is not None:
            found.append(name)
    return sorted(found)


def pinning_problems(template: Template) -> list[str]:
    """Every agent function and the worker publish versions behind the alias their
    callers use, an agent function knows the worker version deployed with it, and the
    worker and the agents may invoke exactly those versions (docs/durability.md)."""
    problems = []
    policy = template["Resources"].get("PinnedInvokePolicy", {}).get("Properties", {})
    roles = set(refs(policy.get("Roles", [])))
    granted = [
        s
        for s in policy.get("PolicyDocument", {}).get("Statement", [])
        if s.get("Effect") == "Allow" and s.get("Action") == "lambda:InvokeFunction"
    ]
    resources = [r for s in granted for r in s.get("Resource", [])]
    agents = agent_functions(template)
    for name in [*agents, "WorkerFunction"]:
        properties = template["Resources"][name]["Properties"]
        if properties.get("AutoPublishAlias") != "live":
            problems.append(f"{name} must publish versions: AutoPublishAlias: live")
        if {"Fn::Sub": f"${{{name}.Arn}}:*"} not in resources:
            problems.append(f"nothing may invoke {name}'s versions (lambda:InvokeFunction)")
        if f"{name}Role" not in roles:
            problems.append(f"{name} may not invoke pinned versions (PinnedInvokePolicy)")
    for name in agents:
        env = template["Resources"][name]["Properties"].get("Environment", {})
        if env.get("Variables", {}).get("PFLAMBDA_WORKER_VERSION") != {
            "Ref": "WorkerFunction.Version"
        }:
            problems.append(f"{name} must set PFLAMBDA_WORKER_VERSION: !Ref WorkerFunction.Version")
    return problems


def retention_problems(template: Template) -> list[str]:
    """Runs are deleted by their record's TTL and the reaper, never by object age: the
    table streams keys, ReaperFunction hears only TTL deletions of run records (the
    filter is pflambda.aws.reaper.FILTER), reports partial failures, and has an
    on-failure queue; shapes/ expire after SHAPE_LIFE_DAYS, runs/ by no rule."""
    from pflambda.aws.reaper import FILTER
    from pflambda.limits import MAX_RETENTION_DAYS, SHAPE_LIFE_DAYS, SHAPE_REFRESH_DAYS

    problems = []
    resources = template["Resources"]
    stream = resources["RunsTable"]["Properties"].get("StreamSpecification", {})
    if stream != {"StreamViewType": "KEYS_ONLY"}:
        problems.append(f"RunsTable must stream KEYS_ONLY, got {stream!r}")
    reaper = functions(template).get("ReaperFunction", {"Properties": {}})["Properties"]
    events = [e["Properties"] for e in reaper.get("Events", {}).values() if e["Type"] == "DynamoDB"]
    if len(events) != 1 or "RunsTable" not in refs(events[0].get("Stream")):
        return [*problems, "ReaperFunction needs one DynamoDB event on RunsTable's stream"]
    event = events[0]
    patterns = [json.loads(f["Pattern"]) for f in event["FilterCriteria"]["Filters"]]
    if patterns != [FILTER]:
        problems.append(f"the reaper's filter {patterns!r} is not reaper.FILTER")
    if "ReportBatchItemFailures" not in event.get("FunctionResponseTypes", []):
        problems.append("the reaper's stream event must report batch item failures")
    failure = event.get("DestinationConfig", {}).get("OnFailure", {})
    if "ReaperDeadLetterQueue" not in refs(failure.get("Destination")):
        problems.append("the reaper's stream event needs ReaperDeadLetterQueue on failure")
    rules = resources["StateBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    for rule in rules:
        prefix = rule.get("Prefix", rule.get("Filter", {}).get("Prefix", ""))
        if "ExpirationInDays" in rule and not prefix.startswith("shapes/"):
            problems.append(f"lifecycle rule {rule['Id']} expires {prefix!r} by age")
    shapes = [r for r in rules if r.get("Prefix") == "shapes/"]
    if [r.get("ExpirationInDays") for r in shapes] != [SHAPE_LIFE_DAYS]:
        problems.append(f"shapes/ must expire after {SHAPE_LIFE_DAYS} days")
    assert SHAPE_LIFE_DAYS >= MAX_RETENTION_DAYS + SHAPE_REFRESH_DAYS
    parameters = template["Parameters"]
    for name in ("RetentionDays", "PausedRetentionDays"):
        if parameters[name].get("MaxValue") != MAX_RETENTION_DAYS:
            problems.append(f"{name} must be at most {MAX_RETENTION_DAYS}")
    return problems


CHECKERS: dict[str, Callable[[Template], list[str]]] = {
    "pinning": pinning_problems,
    "handlers": handler_problems,
    "env": env_problems,
    "iam": iam_problems,
    "table": table_problems,
    "queue": queue_problems,
    "retention": retention_problems,
    "api": api_problems,
    "runtime": runtime_problems,
    "samconfig": samconfig_problems,
}


# -- tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_the_template_agrees_with_the_code(template: Template, checker: str) -> None:
    assert CHECKERS[checker](copy.deepcopy(template)) == []


def test_the_loader_reads_cloudformation_tags(template: Template) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PFLAMBDA_TABLE"] == {"Ref": "RunsTable"}
    assert env["PFLAMBDA_TOKEN_SECRET"]["Fn::If"][0] == "AuthBearer"
    assert template["Resources"]["RunsTable"]["Type"] == "AWS::DynamoDB::Table"
    assert set(refs({"Fn::Sub": "${Api}.x/${Stage}/${StateBucket.Arn}"})) == {
        "Api",
        "Stage",
        "StateBucket",
    }


def test_the_scans_find_what_the_code_uses() -> None:
    # guards the regexes: an empty scan would make the env and IAM checks vacuous
    assert {"PFLAMBDA_TABLE", "PFLAMBDA_QUEUE_URL", "BEDROCK_MODEL_ID"} <= code_env_vars()
    needed = required_actions()
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= set(needed)
    assert needed["s3:GetObject"] == {"StateBucket"}
    assert needed["sqs:SendMessage"] == {"WorkQueue"}
    assert not any(action.endswith("TransactWriteItems") for action in needed)


def test_only_the_local_poller_polls_the_queue() -> None:
    assert local_only_calls() == []


def _set_env(template: Template, name: str, value: Any) -> None:
    template["Globals"]["Function"]["Environment"]["Variables"][name] = value


def _rename_env(template: Template, old: str, new: str) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    env[new] = env.pop(old)


def _drop_action(template: Template, action: str) -> None:
    for statement in template["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]:
        if isinstance(statement.get("Action"), list) and action in statement["Action"]:
            statement["Action"].remove(action)


def _api_paths(template: Template) -> dict[str, Any]:
    paths: dict[str, Any] = template["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]
    return paths


MUTATIONS: dict[str, tuple[str, Callable[[Template], None], str]] = {
    "handler renamed": (
        "handlers",
        lambda t: t["Resources"]["ResearchFunction"]["Properties"].update(
            Handler="handlers/research.handle"
        ),
        "no callable handle",
    ),
    "handler module gone": (
        "handlers",
        lambda t: t["Resources"]["WorkerFunction"]["Properties"].update(
            Handler="handlers/nowhere.handler"
        ),
        "cannot import handlers.nowhere",
    ),
    "env var misspelt": (
        "env",
        lambda t: _rename_env(t, "PFLAMBDA_TABLE", "PFLAMBDA_TABEL"),
        "PFLAMBDA_TABLE is read by the code but not set",
    ),
    "local-only env var set": (
        "env",
        lambda t: _set_env(t, "PFLAMBDA_ALLOW_PRIVATE_PUSH", "1"),
        "must not be set on AWS",
    ),
    "IAM action removed": (
        "iam",
        lambda t: _drop_action(t, "dynamodb:UpdateItem"),
        "may not dynamodb:UpdateItem on RunsTable",
    ),
    "policy detached from a function": (
        "iam",
        lambda t: t["Resources"]["SummariseFunction"]["Properties"].update(Policies=[]),
        "SummariseFunction may not dynamodb:GetItem",
    ),
    "GSI sort key changed": (
        "table",
        lambda t: t["Resources"]["RunsTable"]["Properties"]["GlobalSecondaryIndexes"][1][
            "KeySchema"
        ][1].update(AttributeName="gsi2sk"),
        "GlobalSecondaryIndexes differs",
    ),
    "TTL attribute renamed": (
        "table",
        lambda t: t["Resources"]["RunsTable"]["Properties"]["TimeToLiveSpecification"].update(
            AttributeName="expires_at"
        ),
        "TTL must be enabled on 'ttl'",
    ),
    "redrive too early": (
        "queue",
        lambda t: t["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"].update(
            maxReceiveCount=5
        ),
        "maxReceiveCount is 5",
    ),
    "visibility too short": (
        "queue",
        lambda t: t["Resources"]["WorkQueue"]["Properties"].update(VisibilityTimeout=300),
        "VisibilityTimeout 300 < 6 x worker timeout",
    ),
    "API path missing": (
        "api",
        lambda t: _api_paths(t).pop("/agents/approval/{proxy+}"),
        "does not send /agents/approval/{proxy+} to ApprovalFunction",
    ),
    "console API open": (
        "api",
        lambda t: _api_paths(t)["/console/api/{proxy+}"]["x-amazon-apigateway-any-method"].pop(
            "security"
        ),
        "the console API /console/api/{proxy+} must have the agents' security",
    ),
    "event path wrong": (
        "api",
        lambda t: t["Resources"]["SummariseFunction"]["Properties"]["Events"]["Root"][
            "Properties"
        ].update(Path="/agents/summary"),
        "SummariseFunction has no ANY /agents/summarise event",
    ),
    "parameter renamed": (
        "samconfig",
        lambda t: t["Parameters"].update(Auth=t["Parameters"].pop("AuthMode")),
        "unknown parameter AuthMode",
    ),
    "agent not versioned": (
        "pinning",
        lambda t: t["Resources"]["ApprovalFunction"]["Properties"].pop("AutoPublishAlias"),
        "ApprovalFunction must publish versions",
    ),
    "worker may not invoke pinned versions": (
        "pinning",
        lambda t: t["Resources"]["PinnedInvokePolicy"]["Properties"]["Roles"].pop(),
        "WorkerFunction may not invoke pinned versions",
    ),
    "versions not invocable": (
        "pinning",
        lambda t: t["Resources"]["PinnedInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"][
            0
        ]["Resource"].pop(0),
        "nothing may invoke ResearchFunction's versions",
    ),
    "worker not versioned": (
        "pinning",
        lambda t: t["Resources"]["WorkerFunction"]["Properties"].pop("AutoPublishAlias"),
        "WorkerFunction must publish versions",
    ),
    "agent does not know the worker version": (
        "pinning",
        lambda t: t["Resources"]["ResearchFunction"]["Properties"].pop("Environment"),
        "ResearchFunction must set PFLAMBDA_WORKER_VERSION",
    ),
    "wrong runtime": (
        "runtime",
        lambda t: t["Globals"]["Function"].update(Runtime="python3.9"),
        "Runtime python3.12",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_checker_notices_a_broken_template(template: Template, mutation: str) -> None:
    checker, mutate, expected = MUTATIONS[mutation]
    broken = copy.deepcopy(template)
    mutate(broken)
    problems = CHECKERS[checker](broken)
    assert any(expected in problem for problem in problems), problems


def test_the_env_check_notices_a_variable_the_code_starts_reading(template: Template) -> None:
    problems = env_problems(template, code_env_vars() | {"PFLAMBDA_NEW_SETTING"})
    assert problems == ["PFLAMBDA_NEW_SETTING is read by the code but not set in Globals"]
