"""What one Lambda function's code bundle holds: its handler, the project code it uses, pflambda.

``sam build`` (``BuildMethod: makefile``) runs ``python -m pflambda.bundle HANDLER DEST`` for
each function. It imports the handler module as Lambda will, then the flows of the agents
that module declares (an agent names its flow by a string, so reading import statements
would miss it), and copies into ``DEST``:

- every module imported from the project directory, at its relative path (package
  ``__init__`` files come along, since importing a module imports its parents), with the
  non-Python files of those packages (prompts, data);
- the ``pflambda`` package (without its ``pflambda init`` templates).

Nothing else: the dependencies live in the shared layer (``DepsLayer`` in template.yaml) and
boto3 in the Lambda runtime. A module the code imports only inside a function, at run time,
is not seen; import it at the top of a module the handler imports.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pflambda.engine.flowref import load_flow

__all__ = ["bundle", "project_files"]

_SKIP_DIRS = frozenset({".venv", ".sam-venv", ".aws-sam", "__pycache__", "tests", ".git"})
_PFLAMBDA_SKIP = ("__pycache__", "*.pyc", "scaffold_files")


def _inside(path: Path, root: Path) -> bool:
    try:
        relative = path.relative_to(root)
    except ValueError:
        return False
    return not _SKIP_DIRS & set(relative.parts)


def _project_modules(root: Path, package_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if _inside(path, root) and not path.is_relative_to(package_dir):
            found[name] = path
    return found


def _load_declared_flows(modules: Iterable[str]) -> None:
    """Import the flow of every agent (anything with a ``flow_ref``) the modules define."""
    for name in list(modules):
        for value in list(vars(sys.modules[name]).values()):
            ref = getattr(value, "flow_ref", None)
            if isinstance(ref, str) and not isinstance(value, type):
                load_flow(ref)


def project_files(handler: str, root: Path) -> list[Path]:
    """The project's files (relative to ``root``) that ``handler`` (``pkg/mod.attr``) needs."""
    root = root.resolve()
    package_dir = Path(__file__).resolve().parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module_name = handler.rpartition(".")[0].replace("/", ".")
    importlib.import_module(module_name)
    seen: dict[str, Path] = {}
    while True:  # flows may import handlers' modules and the other way round: to a fixpoint
        modules = _project_modules(root, package_dir)
        if modules.keys() == seen.keys():
            break
        _load_declared_flows(modules.keys() - seen.keys())
        seen = modules
    files = {path.relative_to(root) for path in seen.values()}
    for name, path in seen.items():
        if getattr(sys.modules[name], "__path__", None) is not None:  # a package: its data
            files.update(
                data.relative_to(root)
                for data in path.parent.iterdir()
                if data.is_file() and data.suffix not in (".py", ".pyc")
            )
    return sorted(files)


def bundle(handler: str, dest: Path, root: Path) -> list[Path]:
    """Copy what ``handler`` needs, and pflambda, into ``dest``; the project files copied."""
    files = project_files(handler, root)
    dest.mkdir(parents=True, exist_ok=True)
    for relative in files:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    package_dir = Path(__file__).resolve().parent
    shutil.copytree(
        package_dir,
        dest / "pflambda",
        ignore=shutil.ignore_patterns(*_PFLAMBDA_SKIP),
        dirs_exist_ok=True,
    )
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pflambda.bundle HANDLER DEST [--root DIR]``: prints the files it copied."""
    parser = argparse.ArgumentParser(prog="python -m pflambda.bundle", description=__doc__)
    parser.add_argument("handler", help="the function's Handler, e.g. handlers/research.handler")
    parser.add_argument("dest", type=Path, help="the bundle directory (sam's ARTIFACTS_DIR)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project directory")
    args = parser.parse_args(argv)
    for relative in bundle(args.handler, args.dest, args.root):
        print(f"  {relative}")
    print(f"  pflambda/ -> {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
