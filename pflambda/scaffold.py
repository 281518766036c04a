"""``pflambda init``: a new agent project, ready to test, run locally and deploy.

The project's files are rendered from ``pflambda/scaffold_files/`` (package data):
every ``*.tmpl`` file, at the same relative path without the suffix, with ``__pkg__``
in a path and ``{{name}}``, ``{{pkg}}``, ``{{Title}}``, ``{{version}}`` in the text
replaced. pflambda is not on PyPI, so the installed package itself (without
``__pycache__`` and these templates) is copied into the project as ``pflambda/``:
``sam build`` bundles it and the project's tests import it.
"""

from __future__ import annotations

import keyword
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pflambda.errors import ConfigError

__all__ = ["NAME_PATTERN", "Scaffold", "check_name", "scaffold"]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
"""What an agent's name may be: it is a URL path segment, a Lambda handler module
(with ``-`` as ``_``) and part of CloudFormation logical ids."""

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "scaffold_files"
SUFFIX = ".tmpl"
_RENAMED = {"gitignore": ".gitignore"}
_RESERVED = frozenset({"worker"})  # handlers/worker.py is the shared worker
_NOT_VENDORED = ("__pycache__", "scaffold_files", "*.pyc")


@dataclass
class Scaffold:
    """A project ``init`` wrote: where, and the files it made (relative paths)."""

    root: Path
    name: str
    package: str
    files: list[str] = field(default_factory=list)

    def next_steps(self) -> str:
        """What to run next, to print after the files."""
        url = f"http://127.0.0.1:8080/agents/{self.name}/"
        return "\n".join(
            [
                "Next:",
                f"  cd {self.root}",
                "  make test                # a .venv with the test dependencies, then pytest",
                "  pflambda local           # or: make local (the agent on 127.0.0.1:8080)",
                f'  pflambda send {url} "What is PocketFlow?"',
                "  make sam-build && .sam-venv/bin/sam deploy --guided",
            ]
        )


def check_name(name: str) -> str:
    """The Python package name for agent ``name``, or a ConfigError saying what is wrong."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"invalid agent name {name!r}: use a lowercase letter, then up to 40 "
            "lowercase letters, digits or '-'"
        )
    package = name.replace("-", "_")
    if name in _RESERVED or keyword.iskeyword(package):
        raise ConfigError(f"invalid agent name {name!r}: it is reserved")
    return package


def title_of(name: str) -> str:
    """``demo-agent`` -> ``DemoAgent`` (CloudFormation logical ids)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pflambda")
    except PackageNotFoundError:
        return "unknown"


def scaffold(name: str, directory: str | Path | None = None) -> Scaffold:
    """Create the project for agent ``name`` in ``directory/name`` (default ``./name``).

    Raises ConfigError for a bad name, or if the target exists and is not empty.
    """
    package = check_name(name)
    root = Path(directory if directory is not None else ".") / name
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(f"{root} already exists and is not empty")
    if root.resolve().is_relative_to(PACKAGE):
        raise ConfigError(f"{root} is inside pflambda's own package")
    if not TEMPLATES.is_dir():
        raise ConfigError(f"pflambda's project templates are missing ({TEMPLATES})")
    values = {
        "{{name}}": name,
        "{{pkg}}": package,
        "{{Title}}": title_of(name),
        "{{version}}": _version(),
    }
    result = Scaffold(root=root, name=name, package=package)
    root.mkdir(parents=True, exist_ok=True)
    for source in sorted(TEMPLATES.rglob("*" + SUFFIX)):
        relative = source.relative_to(TEMPLATES).as_posix()[: -len(SUFFIX)]
        relative = _RENAMED.get(relative, relative).replace("__pkg__", package)
        text = source.read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        result.files.append(relative)
    result.files.sort()
    shutil.copytree(PACKAGE, root / "pflambda", ignore=shutil.ignore_patterns(*_NOT_VENDORED))
    result.files.append("pflambda/ (vendored)")
    return result
