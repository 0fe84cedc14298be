"""`--help` at every level: exit 0, plain words, an example and the exit codes."""

from __future__ import annotations

import argparse

import pytest

from app.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(build_parser())


def test_every_command_is_covered() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"serve", "migrate", "rewrap", "admin-token create", "admin-token revoke", "admin-token list",
            "credentials add", "credentials list", "credentials check", "credentials rotate",
            "clients add", "clients list", "clients revoke"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "signvault")
def test_help_explains_and_gives_an_example(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: signvault {' '.join(command)}".rstrip())
    assert "examples:\n  signvault" in out or "examples:\n  " in out
    assert "signvault " + " ".join(command) in out.split("examples:")[1]
    assert "exit codes:" in out and "  2 " in out


def test_secret_handling_is_explained_where_secrets_are_read(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["credentials", "add"], ["credentials", "rotate"]):
        assert main([*command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "never from the command line" in out and "--stdin" in out
    assert main(["credentials", "add", "--help"]) == 0
    assert "okx OKX: hmac, passphrase" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv", [[], ["credentials"], ["clients"], ["admin-token"]])
def test_a_group_without_a_command_shows_its_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: signvault") and "examples:" in err


def test_usage_errors_exit_2_with_argparse_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["credentials", "add", "--label", "x"]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --exchange" in err
    assert main(["credentails"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_secrets_on_the_command_line_are_refused_without_echoing_them(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--api-secret", "hunter2-secret"], ["--api-secret=hunter2-secret"], ["hunter2-secret"],
                 ["--key", "hunter2-secret"]):
        assert main(["credentials", "add", "--exchange", "binance", "--label", "x", *argv]) == 2
        captured = capsys.readouterr()
        assert "hunter2-secret" not in captured.err + captured.out
        assert captured.err.startswith("signvault: error: unrecognised arguments")
        assert captured.err.count("\n") == 1
    main(["credentials", "add", "--exchange", "binance", "--label", "x", "--api-secret", "hunter2-secret"])
    assert "never taken from the command line" in capsys.readouterr().err
