"""What the mitelacd commands share: the version line, and how a usage error ends them.

A usage error (an unknown option, a bad value, a missing ``--host``, an
endpoint that is not one, a names file that does not parse) exits with
status 64, ``EX_USAGE`` of ``sysexits.h``, and not 1 as a crash does. The
systemd unit lists 64 in ``RestartPreventExitStatus=``: a command line that
can never work stops the unit instead of restarting it every few seconds.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from typing import Final, NoReturn

from twisted.copyright import version as twisted_version
from twisted.python import usage

from mitelacd import __version__

#: The exit status of a usage error (``EX_USAGE``).
EXIT_USAGE: Final = 64


class UsageExit(SystemExit):
    """Stops a command that was given bad options, with status 64.

    The message has already been written to standard error; ``str()`` of the
    exception is that message, ``code`` is 64.
    """

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USAGE)
        self.message = message

    def __str__(self) -> str:
        return self.message


def usage_exit(message: str, usage_text: str | None = None) -> UsageExit:
    """Write ``usage_text`` (if any) and ``message`` to standard error; the exception to raise."""
    if usage_text:
        sys.stderr.write(usage_text.rstrip("\n") + "\n\n")
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    return UsageExit(message)


def version_line() -> str:
    """``mitelacd 0.2.0 (Twisted 25.5.0, Python 3.11.7)``."""
    return f"mitelacd {__version__} (Twisted {twisted_version}, Python {platform.python_version()})"


class CommandOptions(usage.Options):
    """The options of a ``twistd`` subcommand of mitelacd.

    ``--version`` prints mitelacd's version rather than Twisted's, and a usage
    error under ``twistd`` prints the usage and the message to standard error
    and exits with :data:`EXIT_USAGE` (twistd itself would exit 1). Parsed on
    their own (by a test, or the ``.tac`` file), the options raise
    ``usage.UsageError`` for the caller to report.
    """

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            command = f"twistd {self.parent.subCommand}"
            raise usage_exit(f"{command}: {e}", usage_text=str(self)) from None

    def opt_version(self) -> NoReturn:
        """Print mitelacd's version (and Twisted's and Python's) and exit."""
        print(version_line())
        sys.stdout.flush()
        raise SystemExit(0)
