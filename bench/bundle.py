"""Sizes of the built Lambda bundles and the shared layer, and each handler's cold import.

Run after `make sam-build` (``make bundle-test`` runs it last):

    .venv/bin/python bench/bundle.py [--python python3.12] [--runs 5]

Each import runs in a fresh ``python -I -S`` with only the bundle, the layer (on arm64; else
``.aws-sam/runtime``'s copies of its requirements) and the runtime's boto3 on ``sys.path``,
as Lambda starts a cold container; the table gives the median of ``--runs``. "all-in-one" is
what a bundle weighed when every function shipped every agent and all dependencies with
boto3 (the layout before the layer): the bundle + the layer + boto3/botocore. "no bytecode"
is the same import from a copy of the bundle without its ``__pycache__`` (as bundles were
built before they shipped python3.12 bytecode; Lambda's read-only /var/task keeps nothing
compiled at run time), measured interleaved with the built bundle's.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
RUNTIME = ROOT / ".aws-sam" / "runtime"

IMPORT = r"""
import json, sys, time
sys.path[0:0] = json.loads(sys.argv[1])
started = time.perf_counter()
import importlib
importlib.import_module(sys.argv[2])
print((time.perf_counter() - started) * 1000)
"""


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def built_resources() -> dict[str, dict[str, str]]:
    """Function and layer build directories from the built template (CFN tags ignored)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((BUILD / "template.yaml").read_text(), Loader=Loader)
    out: dict[str, dict[str, str]] = {}
    for name, resource in template["Resources"].items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::Function":
            out[name] = {"dir": props["CodeUri"], "handler": props["Handler"]}
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            out[name] = {"dir": props["ContentUri"], "handler": ""}
    return out


def import_once(python: str, paths: list[str], module: str) -> float:
    done = subprocess.run(
        [python, "-B", "-I", "-S", "-c", IMPORT, json.dumps(paths), module],
        capture_output=True,
        text=True,
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_REGION": "us-east-1",
        },
    )
    return float(done.stdout.strip().splitlines()[-1])


def cold_import(python: str, paths: list[str], module: str, runs: int) -> float:
    return statistics.median(import_once(python, paths, module) for _ in range(runs))


def with_and_without_bytecode(
    python: str, bundle: Path, rest: list[str], module: str, runs: int
) -> tuple[float, float]:
    """Median cold imports of the bundle as built and of a copy without ``__pycache__``
    (as a bundle without bytecode runs: ``-B``, so nothing compiled is kept), interleaved
    so that both see the same machine load."""
    with tempfile.TemporaryDirectory() as scratch:
        bare = Path(scratch) / bundle.name
        shutil.copytree(bundle, bare, ignore=shutil.ignore_patterns("__pycache__"))
        built, stripped = [], []
        for _ in range(runs):
            built.append(import_once(python, [str(bundle), *rest], module))
            stripped.append(import_once(python, [str(bare), *rest], module))
    return statistics.median(built), statistics.median(stripped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to import with")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (BUILD / "template.yaml").is_file():
        raise SystemExit("no .aws-sam/build: run `make sam-build` first")
    resources = built_resources()
    layers = [BUILD / r["dir"] for r in resources.values() if not r["handler"]]
    layer = size(layers[0]) if layers else 0
    layer_path = [str(layers[0] / "python")] if platform.machine() == "aarch64" and layers else []
    boto = sum(
        size(RUNTIME / p) for p in ("boto3", "botocore", "s3transfer") if (RUNTIME / p).is_dir()
    )
    baseline = (
        cold_import(args.python, [str(RUNTIME)], "boto3", args.runs) if RUNTIME.is_dir() else 0.0
    )
    print(f"python {args.python}; median of {args.runs} cold imports; layer {layer / 1e6:.1f} MB")
    print(
        f"{'function':<20} {'bundle':>10} {'all-in-one':>11} {'import ms':>10} {'over boto3':>11}"
        f" {'no bytecode':>12}"
    )
    for name, resource in resources.items():
        if not resource["handler"]:
            continue
        bundle = BUILD / resource["dir"]
        module = resource["handler"].rpartition(".")[0].replace("/", ".")
        rest = [*layer_path, str(RUNTIME)]
        ms, bare = with_and_without_bytecode(args.python, bundle, rest, module, args.runs)
        total = size(bundle) + layer + boto
        print(
            f"{name:<20} {size(bundle) / 1e3:>7.0f} KB {total / 1e6:>8.1f} MB "
            f"{ms:>10.0f} {ms - baseline:>+10.0f} {bare:>12.0f}"
        )
    print(f"{'(import boto3 alone)':<20} {'':>10} {'':>11} {baseline:>10.0f}")


if __name__ == "__main__":
    main()
