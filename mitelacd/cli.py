"""What the mitelacd commands share: the version line, and how a usage error ends them.

A usage error (an unknown option, a bad value, a missing ``--host``, an
endpoint that is not one, a names file that does not parse) exits with
status 64, ``EX_USAGE`` of ``sysexits.h``, and not 1 as a crash does. The
systemd unit lists 64 in ``RestartPreventExitStatus=``: a command line that
can never work stops the unit instead of restarting it every few seconds.

The error comes first, on standard error, then one line saying where the
options are listed; the help itself is printed only when asked for::

    twistd mitelacd: --host is required (or --simulate to run without a PBX)
    Run 'twistd mitelacd --help' for the options.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from typing import Any, Final, NoReturn

from twisted.copyright import version as twisted_version
from twisted.python import usage

from mitelacd import __version__

#: The exit status of a usage error (``EX_USAGE``).
EXIT_USAGE: Final = 64


class UsageExit(SystemExit):
    """Stops a command that was given bad options, with status 64 (or ``status``).

    The message has already been written to standard error; ``str()`` of the
    exception is that message, ``code`` is the exit status.
    """

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(status)
        self.message = message

    def __str__(self) -> str:
        return self.message


def help_pointer(command: str) -> str:
    """The line after a usage error: ``Run 'twistd mitelacd --help' for the options.``"""
    return f"Run '{command} --help' for the options."


def usage_exit(message: str, command: str | None = None, status: int = EXIT_USAGE) -> UsageExit:
    """Write ``message`` to standard error, then the :func:`help_pointer` of ``command``
    (if any); the exception to raise."""
    sys.stderr.write(message + "\n")
    if command is not None:
        sys.stderr.write(help_pointer(command) + "\n")
    sys.stderr.flush()
    return UsageExit(message, status)


def version_line() -> str:
    """``mitelacd 0.2.0 (Twisted 25.5.0, Python 3.11.7)``."""
    return f"mitelacd {__version__} (Twisted {twisted_version}, Python {platform.python_version()})"


class CommandOptions(usage.Options):
    """The options of a ``twistd`` subcommand of mitelacd.

    ``--version`` prints mitelacd's version rather than Twisted's, and a usage
    error under ``twistd`` prints the message and the line pointing to
    ``--help`` to standard error and exits with :data:`EXIT_USAGE` (twistd
    itself would print the whole help, then the message, and exit 1).
    Parsed on their own (by a test, or the ``.tac`` file), the options raise
    ``usage.UsageError`` for the caller to report.
    """

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            command = f"twistd {self.parent.subCommand}"
            raise usage_exit(f"{command}: {e}", command) from None

    def opt_version(self) -> NoReturn:
        """Print mitelacd's version (and Twisted's and Python's) and exit."""
        print(version_line())
        sys.stdout.flush()
        raise SystemExit(0)


def parser_error(
    parser: argparse.ArgumentParser, message: str, status: int = EXIT_USAGE
) -> NoReturn:
    """An ``argparse`` usage error as the mitelacd commands give it: the error, then where
    the help is, and exit ``status`` (64 unless the command says otherwise)."""
    raise usage_exit(f"{parser.prog}: {message}", parser.prog, status)


class CommandParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors end as :func:`parser_error` says.

    ``usage_status`` is the exit status of a usage error, 64 by default.
    """

    def __init__(self, *args: Any, usage_status: int = EXIT_USAGE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_status = usage_status

    def error(self, message: str) -> NoReturn:
        parser_error(self, message, self.usage_status)
