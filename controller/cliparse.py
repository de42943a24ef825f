"""What `capliquify` and `kubectl capliquify` share as command lines: every default shown in
`--help`; a mistake on the command line is one line and exit 2 (argparse's own error prints
the whole usage block above it, which buries the line that says what was wrong); an API
server's refusal, or none answering, said in one line as kubectl says it."""

from __future__ import annotations

import argparse
import json
import sys
import typing

import urllib3

from controller.plugin.views import printable


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after each option's help; an option whose default is None says
    in its own help what unset means, so "(default: None)" is not printed."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class _Subcommands(argparse._SubParsersAction):
    """Each subcommand's help is its description too (`capliquify validate --help` says what it does)."""

    def add_parser(self, name: str, **options: typing.Any) -> typing.Any:
        if "help" in options:
            options.setdefault("description", options["help"])
        return super().add_parser(name, **options)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        kwargs.setdefault("formatter_class", HelpWithDefaults)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)

    def error(self, message: str) -> typing.NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def subcommands(parser: argparse.ArgumentParser, **kwargs: typing.Any) -> typing.Any:
    """`add_subparsers`; its parsers are Parsers (argparse makes them of the parent's class)."""
    return parser.add_subparsers(**kwargs)


def undocumented(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Arguments without help, through every subcommand (a test keeps this empty)."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if not action.help:
                missing.append(f"{prefix}{action.dest}")
            for name, sub in action.choices.items():
                missing += undocumented(sub, f"{prefix}{name} ")
        elif not action.help and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            missing.append(f"{prefix}{'/'.join(action.option_strings) or action.dest}")
    return missing


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return printable(text.splitlines()[0] if text else type(error).__name__)[:300]


def server_error(status: int | None, reason: str | None, body: typing.Any) -> str:
    """An API server's refusal as kubectl prints it: `Error from server (Forbidden): ...`."""
    try:
        answer = json.loads(body or "{}")
    except (ValueError, TypeError):
        answer = None
    answer = answer if isinstance(answer, dict) else {}
    message = answer.get("message") if isinstance(answer.get("message"), str) else None
    cause = answer.get("reason") if isinstance(answer.get("reason"), str) else reason
    if status == 401:
        return "error: You must be logged in to the server (Unauthorized)"
    if message is None:
        return f"Error from server: {status} {printable(str(reason or ''))[:100]}".rstrip()
    shown = printable(message)[:500]
    if status == 404 and message == "the server could not find the requested resource":
        shown += " (are the CapLiquify CRDs installed? kubectl get crd | grep capliquify)"
    return f"Error from server ({printable(str(cause or status))[:60]}): {shown}"


def connection_error(error: BaseException, host: str | None) -> str:
    """A request that reached no API server, as kubectl says it."""
    reason = getattr(error, "reason", None) or error
    where = urllib3.util.parse_url(host).netloc if host else "the server"
    if isinstance(reason, urllib3.exceptions.NewConnectionError) and "refused" in str(reason).lower():
        return f"The connection to the server {where} was refused - did you specify the right host or port?"
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return f"Unable to connect to the server: lookup {where}: no such host"
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        return f"Unable to connect to the server {where}: timed out ({first_line(reason).split(': ')[-1]})"
    if isinstance(reason, urllib3.exceptions.SSLError):
        return f"Unable to connect to the server {where}: TLS: {first_line(reason)}"
    return f"Unable to connect to the server {where}: {first_line(reason).rsplit('): ', 1)[-1]}"
