"""The README cannot drift from the code (as datasette tests its docs): settings table and CLI examples.

Everything is read at run time (core.config.Settings, core.__main__.build_parser()), so a new
setting or command fails here until the README names it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from core.__main__ import build_parser
from core.config import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
CLI = re.compile(r"(?:^|\s)((?:python -m core|embedscope)(?:\s.*)?)$")
SETTINGS_HEADER = re.compile(r"^\|\s*variable\s*\|\s*default\s*\|", re.IGNORECASE)


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def settings_table() -> dict[str, str]:
    """{env name: default cell without backticks} of the README's settings table."""
    rows: dict[str, str] = {}
    in_table = False
    for line in _readme().splitlines():
        if SETTINGS_HEADER.match(line):
            in_table = True
        elif in_table and not line.startswith("|"):
            break
        elif in_table and not set(line) <= set("|- "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1].strip("`")
    assert rows, "README.md has no settings table (| variable | default | meaning |)"
    return rows


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def test_the_settings_table_lists_exactly_the_settings() -> None:
    documented = set(settings_table())
    fields = {_env_name(f) for f in Settings.model_fields}
    assert not fields - documented, f"settings missing from README's table: {sorted(fields - documented)}"
    assert not documented - fields, f"README's table lists settings that do not exist: {sorted(documented - fields)}"


def test_every_setting_named_in_the_readme_exists() -> None:
    fields = {_env_name(f) for f in Settings.model_fields}
    named = set(re.findall(rf"\b{ENV_PREFIX}[A-Z0-9_]+", _readme()))
    assert not named - fields, f"README names settings that do not exist: {sorted(named - fields)}"


def _literal_defaults() -> dict[str, object]:
    """Fields whose default is a plain value (not computed, not None / empty)."""
    return {name: field.default for name, field in Settings.model_fields.items()
            if field.default is not PydanticUndefined and field.default not in (None, (), "")}


@pytest.mark.parametrize("field", sorted(_literal_defaults()))
def test_documented_defaults_read_as_the_real_defaults(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's default, given as the variable's value, yields the field's default: "10" for
    # 10.0 and "1" for True are right, "8" for 32 is not.
    table = settings_table()
    if _env_name(field) not in table:
        pytest.fail(f"{_env_name(field)} is missing from README's settings table")
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(_env_name(field), table[_env_name(field)])
    read = getattr(Settings(_env_file=None), field)  # type: ignore[call-arg]
    assert read == _literal_defaults()[field], (field, table[_env_name(field)], _literal_defaults()[field])


def cli_examples() -> list[tuple[int, str, bool]]:
    """(line number, command, complete) for every `python -m core ...` / `embedscope ...` in a
    ```bash block (backslash continuations joined; complete) or in an inline code span of the README
    (complete unless it only names a command, as in "the `python -m core delete` command")."""
    found: list[tuple[int, str, bool]] = []
    lines = _readme().splitlines()
    in_bash, pending, start = False, "", 0
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_bash = line.strip() in ("```bash", "```sh", "```shell") if not in_bash else False
            continue
        if in_bash:
            pending, start = (pending + " " + line.strip(), start) if pending else (line.strip(), number)
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            match = CLI.search(pending)
            if match:
                found.append((start, match.group(1), True))
            pending = ""
    # Inline spans outside fenced blocks (blanked, keeping line numbers, so ``` never pairs up).
    prose = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), _readme(), flags=re.M | re.S)
    for match in re.finditer(r"`([^`]+)`", prose):
        span = " ".join(match.group(1).split())
        cli = CLI.search(span)
        if cli and "<" not in span:  # `embedscope <command>` is a placeholder, not an example
            complete = len(_arguments(cli.group(1))) > 1
            found.append((prose.count("\n", 0, match.start()) + 1, cli.group(1), complete))
    return found


def _arguments(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    return words[3:] if words[0] == "python" else words[1:]


def test_the_readme_has_cli_examples() -> None:
    assert len(cli_examples()) >= 5, cli_examples()


@pytest.mark.parametrize(("line", "command", "complete"), cli_examples(), ids=lambda v: str(v)[:60])
def test_every_cli_example_in_the_readme_parses(line: int, command: str, complete: bool,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = _arguments(command)
    if not complete:  # a command named in prose: it must exist
        assert argv[0] in _subcommands(build_parser()), f"README.md line {line}: no command {argv[0]!r}"
        return
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:
        asked_for_help = bool({"-h", "--help"} & set(argv))
        assert e.code == 0 and asked_for_help, (
            f"README.md line {line}: `{command}` does not parse: {capsys.readouterr().err.strip()}")


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(name for action in actions for name in action.choices)


def test_every_command_is_shown_in_the_readme() -> None:
    commands = _subcommands(build_parser())
    assert {"ingest", "list", "search"} <= set(commands), commands
    text = _readme()
    missing = [c for c in commands if not re.search(rf"(?:python -m core|embedscope) {re.escape(c)}\b", text)]
    assert not missing, f"commands never shown as `python -m core <command>` in README.md: {missing}"
