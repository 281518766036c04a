"""``pflambda init``: a new agent project, ready to test, run locally and deploy.

The project's files are rendered from ``pflambda/scaffold_files/`` (package data):
every ``*.tmpl`` file, at the same relative path without the suffix, with ``__pkg__``
in a path and ``{{name}}``, ``{{pkg}}``, ``{{Title}}``, ``{{version}}``,
``{{requirement}}`` in the text replaced.

The project depends on pflambda like on any library: its ``requirements.txt`` names the
pflambda this command runs from (:func:`pflambda_requirement`), so ``pip install -r
requirements.txt`` gets the same code, and ``sam build`` bundles the installed copy
(``python -m pflambda.bundle``). Nothing of pflambda's source is copied into the project.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution, distributions
from pathlib import Path
from urllib.parse import unquote, urlparse

from pflambda.errors import ConfigError

__all__ = ["NAME_PATTERN", "Scaffold", "check_name", "pflambda_requirement", "scaffold"]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
"""What an agent's name may be: it is a URL path segment, a Lambda handler module
(with ``-`` as ``_``) and part of CloudFormation logical ids."""

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "scaffold_files"
SUFFIX = ".tmpl"
_RENAMED = {"gitignore": ".gitignore"}
_RESERVED = frozenset({"worker"})  # handlers/worker.py is the shared worker


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
                "  make test     # a .venv with pflambda and the test tools, then the tests",
                "  make local    # the agent over A2A on http://127.0.0.1:8080 (PORT=...)",
                f'  .venv/bin/pflambda send {url} "What is PocketFlow?"',
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


def pflambda_requirement() -> str:
    """How a project asks pip for the pflambda running now (PEP 610's ``direct_url.json``).

    Installed from a wheel or sdist file: that file; from a source directory (``pip
    install -e .``): that directory; from a VCS: that repository at that commit; from an
    index: ``pflambda==<version>``.
    """
    found = list(distributions(name="pflambda"))  # a source tree's egg-info may come first
    if not found:
        return "pflambda"
    installed = [d for d in found if d.read_text("direct_url.json")]
    if not installed:
        return f"pflambda=={found[0].version}"
    dist = installed[0]
    raw = dist.read_text("direct_url.json") or "{}"
    info = json.loads(raw)
    url = str(info.get("url", ""))
    vcs = info.get("vcs_info")
    if vcs:
        return f"pflambda @ {vcs['vcs']}+{url}@{vcs.get('commit_id', '')}".rstrip("@")
    if "dir_info" in info and urlparse(url).scheme == "file":
        return f"pflambda @ {Path(unquote(urlparse(url).path)).as_uri()}"
    return f"pflambda @ {url}"


def _version() -> str:
    try:
        return distribution("pflambda").version
    except PackageNotFoundError:
        return "unknown"


def scaffold(
    name: str, directory: str | Path | None = None, requirement: str | None = None
) -> Scaffold:
    """Create the project for agent ``name`` in ``directory`` (default ``./name``).

    ``requirement`` is the pflambda line of its requirements.txt (default: this pflambda,
    see :func:`pflambda_requirement`). Raises ConfigError for a bad name or requirement,
    or if the target exists and is not empty.
    """
    package = check_name(name)
    requirement = (requirement or pflambda_requirement()).strip()
    if not requirement or "\n" in requirement or not requirement.startswith("pflambda"):
        raise ConfigError(
            f"--pflambda must be one requirement for pflambda, e.g. "
            f"'pflambda @ file:///path/to/pflambda-{_version()}-py3-none-any.whl', "
            f"got {requirement!r}"
        )
    root = Path(directory) if directory is not None else Path(name)
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
        "{{requirement}}": requirement,
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
    return result
