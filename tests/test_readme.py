"""The README stays true: its configuration table lists exactly the variables the functions read, and the commands
it names exist."""

from __future__ import annotations

import re
from pathlib import Path

from bucket_ingest.cli import COMMANDS
from shared.settings import VARIABLES

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_configuration_table_lists_every_variable() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert documented == set(VARIABLES)


def test_the_commands_it_names_exist() -> None:
    named = set(re.findall(r"`bucket-ingest ([a-z-]+)", README))
    assert named and named <= set(COMMANDS)
    assert set(COMMANDS) <= named, "every command is documented"


def test_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
