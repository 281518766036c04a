"""Console blocks of the docs, as a test: parse them, run them, compare the output.

The convention (README.md, "The docs are tested", says the same for writers):

- Every fenced block tagged ``console`` in README.md and docs/*.md runs, in order, one
  shell session per file: each command in a fresh ``bash`` process, in the repository,
  with ``export``/``source``/``cd`` carried to the next command as a terminal would. Runs
  live in a temporary ``PFLAMBDA_DIR`` and ``HOME`` is a temporary directory, so nothing
  touches the project's ``.pflambda/`` or the reader's home.
- A block whose lines start with ``$ `` holds commands (``$ ...``) and, under each, the
  output it must print (stdout and stderr together). A block without ``$`` lines is only
  commands, one a line; their output is not compared. Commands must exit 0, unless the
  output ends with ``[exit N]``. A ``# comment`` after a command is the shell's.
- In expected output ``…`` stands for any text within a line, a line that is only ``…``
  for any number of lines, and runs of spaces for any run of spaces. An id shortened as
  ``1b0c…`` (hex digits, then ``…``) matches a whole id and names it: later commands
  that write ``1b0c…`` get that id.
- ``<!-- walkthrough: skip REASON -->`` right before a block: it cannot run here (it
  needs AWS, or serves until stopped); the reason is required. A command that starts a
  background process (``cmd &``) is refused unless its block is skipped, and each
  command runs in a process group of its own that is killed when it returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "Command", "Session", "blocks", "match"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*walkthrough:\s*skip\s*(.*?)\s*-->\s*$")
_EXIT = re.compile(r"^\[exit (\d+)\]$")
_ID = re.compile(r"\b([0-9a-f]{2,})…")
_BACKGROUND = re.compile(r"&\s*(#.*)?$|&\s*\)", re.MULTILINE)
"""A command that puts something in the background (``cmd &``), which a test must not."""
_ENV_MARK = "@@walkthrough-env-5c1e@@"


@dataclass
class Command:
    """One command of a block, and what it must print and exit with."""

    text: str
    expected: list[str] | None
    """Lines it must print (see :func:`match`); ``None``: not compared."""
    exit_code: int = 0
    line: int = 0


@dataclass
class Block:
    """One ``console`` block: where it is, whether it runs, its commands."""

    path: Path
    line: int
    commands: list[Command]
    skip: str | None = None


def blocks(path: Path) -> list[Block]:
    """Every ``console`` block of a markdown file, in order."""
    found: list[Block] = []
    lines = path.read_text().splitlines()
    skip: str | None = None
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        marker = _SKIP.match(lines[i])
        if marker:
            if not marker.group(1):
                raise ValueError(f"{path}:{i + 1}: a walkthrough skip needs a reason")
            skip = marker.group(1)
        elif fence and fence.group(1):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) == "console":
                commands = _commands(lines[i + 1 : end], i + 2)
                found.append(Block(path, i + 1, commands, skip))
            skip, i = None, end
        elif lines[i].strip():
            skip = None if not lines[i].startswith("<!--") else skip
        i += 1
    return found


def _commands(body: list[str], first_line: int) -> list[Command]:
    joined: list[tuple[int, str]] = []
    for n, text in enumerate(body, first_line):
        if joined and joined[-1][1].endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1] + "\n" + text)
        else:
            joined.append((n, text))
    if not any(text.startswith("$ ") for _, text in joined):
        return [Command(text, None, line=n) for n, text in joined if text.strip()]
    commands: list[Command] = []
    for n, text in joined:
        if text.startswith("$ "):
            commands.append(Command(text[2:], [], line=n))
        elif commands and (code := _EXIT.match(text.strip())):
            commands[-1].exit_code = int(code.group(1))
        elif commands and commands[-1].expected is not None:
            commands[-1].expected.append(text)
    for command in commands:
        while command.expected and not command.expected[-1].strip():
            command.expected.pop()
    return commands


def _line_pattern(expected: str) -> re.Pattern[str]:
    parts: list[str] = []
    for piece in re.split(r"(\s+|\b[0-9a-f]{2,}…|…)", expected.strip()):
        if not piece:
            continue
        if piece.isspace():
            parts.append(r"\s+")
        elif piece == "…":
            parts.append(r".*?")
        elif _ID.fullmatch(piece):
            parts.append(r"([0-9a-zA-Z][0-9a-zA-Z-]*)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + r"\s*$")


def match(expected: list[str], actual: list[str], ids: dict[str, str]) -> str | None:
    """``None`` if ``actual`` lines are what ``expected`` says (binding shortened ids
    into ``ids``), else what differs, in a sentence."""
    actual = [line for line in actual if line.strip()]
    expected = [line for line in expected if line.strip()]

    def walk(e: int, a: int) -> str | None:
        if e == len(expected):
            return None if a == len(actual) else f"unexpected output: {actual[a]!r}"
        if expected[e].strip() == "…":
            for skip in range(a, len(actual) + 1):
                if walk(e + 1, skip) is None:
                    return None
            return f"nothing after {expected[e - 1] if e else 'the start'!r} matches"
        if a == len(actual):
            return f"missing output: {expected[e].strip()!r}"
        found = _line_pattern(expected[e]).match(actual[a].strip())
        if found is None:
            return f"expected {expected[e].strip()!r}, got {actual[a].strip()!r}"
        shown = _ID.findall(expected[e].strip())
        for short, value in zip(shown, found.groups(), strict=True):
            key = short + "…"
            if ids.get(key, value) != value:
                return f"{key} was {ids[key]!r} before, now {value!r}"
            ids[key] = value
        return walk(e + 1, a + 1)

    return walk(0, 0)


@dataclass
class Session:
    """A terminal: commands in fresh processes, the environment and directory carried."""

    cwd: Path
    env: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)
    timeout: float = 120

    def run(self, command: Command) -> tuple[int, list[str]]:
        """Run ``command`` (its shortened ids filled in); its exit code and output lines."""
        text = _ID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), command.text)
        script = f"{text}\n__rc=$?\nprintf '%s' '{_ENV_MARK}'\npwd\nenv -0\nexit \"$__rc\"\n"
        if _BACKGROUND.search(text):
            raise ValueError(
                f"line {command.line}: {text!r} starts a background process; "
                "mark its block <!-- walkthrough: skip REASON -->"
            )
        with tempfile.TemporaryFile("w+") as sink:  # a pipe would wait for orphans
            proc = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.cwd,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own process group: nothing outlives it
            )
            try:
                proc.wait(timeout=self.timeout)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            sink.seek(0)
            stdout = sink.read()
        out, _, state = stdout.partition(_ENV_MARK)
        if state:
            where, _, env = state.partition("\n")
            self.cwd = Path(where)
            self.env = dict(item.split("=", 1) for item in env.split("\0") if "=" in item)
        return int(proc.returncode), out.splitlines()


def session_env(root: Path, home: Path) -> dict[str, str]:
    """A clean environment for a new reader: the system PATH, runs in ``home``, and a
    fresh ``HOME`` beside it, so nothing a doc does lands in the real one."""
    keep = ("LANG", "LC_ALL", "TMPDIR", "USER")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    (home.parent / "home").mkdir(parents=True, exist_ok=True)
    env |= {
        "HOME": str(home.parent / "home"),  # `~` in a doc is a temporary directory
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PFLAMBDA_DIR": str(home),
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    }
    return env
