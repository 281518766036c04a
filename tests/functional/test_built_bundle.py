"""The code `sam build` packs runs: each built function, on its own, against moto.

Each function's build directory (``.aws-sam/build/<Function>``) is run in a separate
Python -- python3.12, the Lambda runtime, when one is found -- started with ``-I -S``:
no site-packages, no PYTHONPATH, no repository on ``sys.path``; only what Lambda puts
there: the bundle (``/var/task``), the shared layer's ``python/`` (``/opt/python``), and
the runtime's boto3 (``/var/runtime``: here ``.aws-sam/runtime``, which ``make bundle-test``
installs for this machine). So a bundle must hold its handler, its flows and pflambda, and
the layer every other dependency. The environment is the one template.yaml gives the
functions, with its Refs pointed at a moto server started here.

The layer is built for arm64. On another machine its compiled packages (pydantic-core)
cannot load, so the functions run on ``.aws-sam/runtime``'s copies of the layer's
requirements, built for this machine, and a test checks that the layer holds the same
distributions at the same versions.

Skipped when there is no build (run ``make sam-build``); ``PFLAMBDA_REQUIRE_SAM_BUILD=1``
(set by ``make bundle-test`` and CI) makes a missing build a failure.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import load_event
from tests.functional.test_template import Template, functions, handler_ref, load_template

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
RUNTIME = ROOT / ".aws-sam" / "runtime"
"""boto3 as the runtime has it, and (off arm64) the layer's requirements for this machine."""
LAMBDA_MACHINE = "aarch64"
RUNTIME_PROVIDES = {"boto3", "botocore", "s3transfer", "python_dateutil", "urllib3"}
"""Not in the layer: the runtime has them (jmespath stays: powertools needs its own)."""
MAX_BUNDLE_BYTES = 3 * 1024 * 1024
"""About half of it python3.12 bytecode."""

pytestmark = pytest.mark.xdist_group("sam-bundle")

RUNNER = r"""
import importlib, json, sys, sysconfig
paths, handler, event_file = sys.argv[1:4]
sys.path[0:0] = json.loads(paths)
build = sys.path[0]
allowed = tuple(json.loads(paths))
module_name, _, attribute = handler.rpartition(".")
function = getattr(importlib.import_module(module_name.replace("/", ".")), attribute)
assert callable(function), handler

class Context:
    function_name = "bundle-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bundle-test"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/bundle-test"
    log_stream_name = "bundle-test"
    def get_remaining_time_in_millis(self):
        return 30_000

response = None
if event_file:
    with open(event_file) as f:
        response = function(json.load(f), Context())
stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
foreign = sorted(
    f"{name}: {module.__file__}"
    for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not module.__file__.startswith(allowed)
    and not any(module.__file__.startswith(p) for p in stdlib)
)
print(json.dumps({"response": response, "foreign": foreign, "version": sys.version}))
"""


@functools.cache
def _python() -> str:
    """python3.12 (the Lambda runtime) if available, else this interpreter."""
    given = os.environ.get("PFLAMBDA_BUNDLE_PYTHON", "")
    candidates = [given] if given else []
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run(
            [pyenv, "root"], check=False, capture_output=True, text=True
        ).stdout.strip()
        candidates += sorted(str(p) for p in Path(root).glob("versions/3.12*/bin/python3.12"))
    candidates += [shutil.which("python3.12") or ""]
    for candidate in filter(None, candidates):
        probe = "import sys; assert sys.version_info[:2] == (3, 12)"
        ok = subprocess.run([candidate, "-c", probe], check=False, capture_output=True)
        if ok.returncode == 0:
            return candidate
    if given:
        pytest.fail(f"PFLAMBDA_BUNDLE_PYTHON={given} is not a working python3.12")
    return sys.executable


@pytest.fixture(scope="module")
def built() -> Template:
    """The template `sam build` wrote, whose CodeUris are the build directories."""
    if not (BUILD / "template.yaml").is_file():
        reason = f"no SAM build at {BUILD}: run `make sam-build` first"
        if os.environ.get("PFLAMBDA_REQUIRE_SAM_BUILD") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return load_template(BUILD / "template.yaml")


def _condition(template: Template, value: Any) -> bool:
    """Evaluate a condition with the parameters' defaults (Equals/Not/And/Or on Refs)."""
    if isinstance(value, str):
        return _condition(template, template["Conditions"][value])
    ((op, args),) = value.items()
    if op == "Fn::Not":
        return not _condition(template, args[0])
    if op == "Fn::And":
        return all(_condition(template, a) for a in args)
    if op == "Fn::Or":
        return any(_condition(template, a) for a in args)
    if op == "Condition":
        return _condition(template, args)
    assert op == "Fn::Equals", op
    left, right = (_value(template, a, {}) for a in args)
    return bool(left == right)


def _value(template: Template, value: Any, resources: dict[str, str]) -> Any:
    """A template value with Refs to parameters (their defaults) and to resources
    (``resources``) resolved; None for AWS::NoValue."""
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        if name in resources:
            return resources[name]
        return str(template["Parameters"][name].get("Default", ""))
    if "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        return _value(template, yes if _condition(template, condition) else no, resources)
    raise AssertionError(f"cannot resolve {value!r} offline")


@pytest.fixture(scope="module")
def environment(built: Template) -> Iterator[dict[str, str]]:
    """What the functions' environment would be, pointed at a moto server."""
    from pflambda.local.emulator import start_emulator

    emulator = start_emulator()
    resources = {
        "RunsTable": emulator.settings.table,
        "StateBucket": emulator.settings.bucket,
        "WorkQueue": emulator.queue_url,
    }
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AWS_LAMBDA_FUNCTION_NAME": "bundle-test"}
    env.update({k: v for k, v in emulator.env().items() if k.startswith("AWS_")})
    variables = built["Globals"]["Function"]["Environment"]["Variables"]
    for name, raw in variables.items():
        value = _value(built, raw, resources)
        if value is not None:
            env[name] = str(value)
    try:
        yield env
    finally:
        emulator.stop()


def _layer(template: Template) -> Path:
    (layer,) = (
        r["Properties"]["ContentUri"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::LayerVersion"
    )
    return BUILD / layer / "python"


def _paths(template: Template, build: Path) -> list[str]:
    """What Lambda puts on sys.path: the bundle, the layer, the runtime's boto3."""
    if platform.machine() == LAMBDA_MACHINE:
        return [str(build), str(_layer(template)), str(RUNTIME)]
    return [str(build), str(RUNTIME)]


def _distributions(directory: Path) -> dict[str, str]:
    found = {}
    for info in directory.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[name.lower().replace("-", "_")] = version
    return found


def _run(
    env: dict[str, str], function: str, template: Template, event: Path | None
) -> dict[str, Any]:
    properties = functions(template)[function]["Properties"]
    build = BUILD / properties["CodeUri"]
    handler = properties["Handler"]
    python = _python()
    paths = json.dumps(_paths(template, build))
    args = [python, "-B", "-I", "-S", "-c", RUNNER, paths, handler, str(event or "")]
    done = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{function} ({handler}) failed:\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["foreign"] == [], f"{function} loaded code from outside its bundle"
    return result


def _size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def test_every_function_bundle_holds_its_code_and_nothing_else(built: Template) -> None:
    for name, function in functions(built).items():
        build = BUILD / function["Properties"]["CodeUri"]
        present = {p.name for p in build.iterdir()}
        assert {"pflambda", "handlers"} <= present, f"{name} lacks its code"
        libraries = present - {"pflambda", "handlers", "flows"}  # flows: if it runs any
        assert not libraries, f"{name} holds more than its code: {libraries}"
        module, _ = handler_ref(function["Properties"]["Handler"])
        assert (build / (module.replace(".", "/") + ".py")).is_file()
        assert not (build / "pflambda" / "scaffold_files").exists()
        assert _size(build) < MAX_BUNDLE_BYTES, f"{name} is {_size(build)} bytes"


def test_an_agents_bundle_holds_its_own_flow_only_and_the_worker_every_flow(
    built: Template,
) -> None:
    bundles = {n: BUILD / f["Properties"]["CodeUri"] for n, f in functions(built).items()}
    every_flow = ("WorkerFunction", "ConsoleFunction")  # they continue any agent's runs
    agents = {  # the functions behind the API but those: one agent each
        n: bundles[n]
        for n, f in functions(built).items()
        if n not in every_flow
        and any(e["Type"] == "Api" for e in f["Properties"].get("Events", {}).values())
    }
    assert agents, "no agent functions"
    flows = {p.name for p in (ROOT / "flows").iterdir() if (p / "flow.py").is_file()}
    for name, build in agents.items():
        held = {p.name for p in (build / "flows").iterdir() if (p / "__init__.py").is_file()}
        handlers = {p.stem for p in (build / "handlers").glob("*.py")} - {"__init__"}
        assert handlers == {name.removesuffix("Function").lower()}, (name, handlers)
        assert len(held) == 1, (name, held)
        assert held < flows, (name, held)
    served = {
        p.name
        for b in agents.values()
        for p in (b / "flows").iterdir()
        if (p / "__init__.py").is_file()
    }
    for name in every_flow:
        held = {
            p.name for p in (bundles[name] / "flows").iterdir() if (p / "__init__.py").is_file()
        }
        assert held >= served, (name, held)


def test_the_layer_holds_the_dependencies_but_not_what_the_runtime_has(built: Template) -> None:
    layer = _distributions(_layer(built))
    assert {"aws_lambda_powertools", "pydantic", "pydantic_core"} <= layer.keys()
    assert not RUNTIME_PROVIDES & layer.keys(), RUNTIME_PROVIDES & layer.keys()
    assert any(_layer(built).glob("pydantic_core/*aarch64*.so")), "not built for arm64"
    if platform.machine() != LAMBDA_MACHINE:  # the functions ran on these instead
        here = _distributions(RUNTIME)
        assert {k: here.get(k) for k in layer} == layer


def _stale_bytecode(directory: Path) -> list[str]:
    """Modules under ``directory`` without python3.12 bytecode that Lambda can use as is:
    hash-based and unchecked (flags 0b01), since nothing compiled at run time is kept."""
    missing = []
    for source in directory.rglob("*.py"):
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        header = compiled.read_bytes()[:8] if compiled.is_file() else b""
        if len(header) < 8 or int.from_bytes(header[4:8], "little") != 0b01:
            missing.append(str(source.relative_to(directory)))
    return missing


def test_bundles_and_the_layer_ship_unchecked_bytecode_for_the_runtime(built: Template) -> None:
    if not os.environ.get("PFLAMBDA_BUNDLE_PYTHON"):
        pytest.skip("built without python3.12 (`make bundle-test` names the one it used)")
    for name, function in functions(built).items():
        build = BUILD / function["Properties"]["CodeUri"]
        assert not _stale_bytecode(build), f"{name}: {_stale_bytecode(build)[:5]}"
    layer = _stale_bytecode(_layer(built))
    assert not layer, f"layer: {len(layer)} modules without bytecode, e.g. {layer[:5]}"


def test_every_built_handler_imports_from_its_bundle_alone(
    built: Template, environment: dict[str, str]
) -> None:
    for name in functions(built):
        result = _run(environment, name, built, None)
        if Path(_python()) != Path(sys.executable):
            assert result["version"].startswith("3.12")


def test_the_built_research_agent_completes_a_task_and_the_worker_settles_it(
    built: Template, environment: dict[str, str], tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(load_event("apigw_rest_post.json")))
    response = _run(environment, "ResearchFunction", built, request)["response"]
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == "req-1"
    assert "result" in body, body
    task = body["result"]
    assert task["kind"] == "task"
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0]["text"]

    # the worker, from its own bundle: a late continuation of that (finished) run is
    # dropped and acknowledged; a message pflambda did not write is reported failed
    sqs = load_event("sqs_continue.json")
    late = sqs["Records"][0]
    late["body"] = json.dumps({"kind": "continue", "run_id": task["id"], "seq": 0})
    garbage = dict(late, messageId="not-pflambda", body="hello")
    sqs["Records"] = [late, garbage]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(sqs))
    outcome = _run(environment, "WorkerFunction", built, batch)["response"]
    assert outcome == {"batchItemFailures": [{"itemIdentifier": "not-pflambda"}]}
