"""The documentation stays true: every setting and every command is documented."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sdi.cli import cli
from sdi.settings import SETTINGS_DOC, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    for name in SETTINGS_DOC:
        assert f"`{name}`" in README, name


def test_every_setting_is_read() -> None:
    env = {name: "" for name in SETTINGS_DOC}
    assert isinstance(load_settings(env), Settings)
    custom = load_settings({"SDI_PORT": "8080", "SDI_STORAGE_SRID": "2326"})
    assert custom.port == 8080 and custom.storage_srid == 2326


def test_readme_shows_the_two_commands_first() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block


def test_every_command_has_help_and_is_in_the_readme() -> None:
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert command.help, name
        assert f"sdi {name}" in README, name
