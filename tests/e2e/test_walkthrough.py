"""The docs' console blocks run as written: README.md first, then docs/*.md.

See tests/e2e/walkthrough.py for the convention (and README.md, "The docs are tested").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.walkthrough import Block, Command, Session, blocks, match, session_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _run_file(path: Path, tmp_path: Path) -> None:
    env = session_env(ROOT, tmp_path / ".pflambda")
    if path.name != "README.md":  # the docs start where the README leaves you: activated
        venv = ROOT / ".venv"
        env |= {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{env['PATH']}"}
    session = Session(ROOT, env)
    for block in blocks(path):
        if block.skip is not None:
            continue
        for command in block.commands:
            _check(session, block, command)


def _check(session: Session, block: Block, command: Command) -> None:
    code, output = session.run(command)
    where = f"{block.path.relative_to(ROOT)}:{command.line}: $ {command.text}"
    shown = "\n".join(output[-40:])
    assert code == command.exit_code, (
        f"{where}\nexit {code}, expected {command.exit_code}:\n{shown}"
    )
    if command.expected is not None:
        problem = match(command.expected, output, session.ids)
        assert problem is None, f"{where}\n{problem}\n--- output:\n{shown}"


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_console_blocks_run_as_written(path: Path, tmp_path: Path) -> None:
    _run_file(path, tmp_path)


def test_every_doc_has_its_console_blocks_run_or_skipped_for_a_reason() -> None:
    runnable = [b for path in DOCS for b in blocks(path) if b.skip is None]
    assert any(b.path.name == "README.md" for b in runnable)
    for path in DOCS:
        for block in blocks(path):
            assert block.skip is None or block.skip.strip(), f"{path}:{block.line}"


def test_the_convention(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- walkthrough: skip needs AWS -->\n```console\nsam deploy\n```\n\n"
        "```console\n$ echo run 1b0c4e2a-77 ok; echo\n  run 1b0c… ok\n"
        "$ echo again 1b0c…\nagain 1b0c…\n$ ls /nope # fails\n…\n[exit 2]\n```\n"
        "```python\n$ not a console block\n```\n"
    )
    skipped, ran = blocks(doc)
    assert skipped.skip == "needs AWS"
    assert [c.text for c in skipped.commands] == ["sam deploy"]
    assert [(c.exit_code, c.expected) for c in ran.commands] == [
        (0, ["  run 1b0c… ok"]),
        (0, ["again 1b0c…"]),
        (2, ["…"]),
    ]
    session = Session(tmp_path, session_env(tmp_path, tmp_path / ".pflambda"))
    for command in ran.commands:
        code, output = session.run(command)
        assert code == command.exit_code
        assert match(command.expected or [], output, session.ids) is None
    assert session.ids == {"1b0c…": "1b0c4e2a-77"}


def test_matching_is_strict_about_substance() -> None:
    ids: dict[str, str] = {}
    assert match(["a  …  c"], ["a b    c"], ids) is None
    assert "expected" in (match(["a b"], ["a c"], ids) or "")
    assert "unexpected output" in (match(["a"], ["a", "b"], ids) or "")
    assert "missing output" in (match(["a", "b"], ["a"], ids) or "")
    assert match(["a", "…", "z"], ["a", "b", "c", "z"], ids) is None
    assert match(["id ab…"], ["id 1234"], ids) is None
    assert "was '1234' before" in (match(["id ab…"], ["id 99"], ids) or "")


def test_a_session_carries_exports_and_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    session = Session(tmp_path, session_env(tmp_path, tmp_path / ".pflambda"))
    session.run(Command("export GREETING=hi; cd sub", None))
    code, output = session.run(Command('echo "$GREETING $(basename $PWD)"', None))
    assert (code, output) == (0, ["hi sub"])
    code, output = session.run(Command("echo ~", None))
    assert output == [str(tmp_path / "home")]


def test_a_skip_needs_a_reason(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- walkthrough: skip -->\n```console\nx\n```\n")
    with pytest.raises(ValueError, match="needs a reason"):
        blocks(doc)


def test_background_processes_are_refused_and_nothing_outlives_a_command(
    tmp_path: Path,
) -> None:
    session = Session(tmp_path, session_env(tmp_path, tmp_path / ".pflambda"))
    for text in ("sleep 60 &", "(sleep 60 &)", "sleep 60 & # comment"):
        with pytest.raises(ValueError, match="background process"):
            session.run(Command(text, None))
    spawn = "import subprocess; print(subprocess.Popen(['sleep', '60']).pid)"
    code, output = session.run(Command(f'python3 -c "{spawn}"', None))
    assert code == 0
    child = Path(f"/proc/{output[0]}")
    for _ in range(200):  # the group was killed; wait for the orphan to be reaped
        if not child.exists() or "zombie" in (child / "status").read_text():
            break
        time.sleep(0.01)
    assert not child.exists() or "zombie" in (child / "status").read_text()
