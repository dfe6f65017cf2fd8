"""Exceptions raised by sme-abm's public API.

Every error a user can cause by what they feed the model (a config file, an
experiment file, a ``--set`` override, keyword overrides in Python) is a
:class:`ConfigError`. Its message is one line naming the file, the key and
what is allowed, so the CLI can print it as is and exit with status 2.
"""

from __future__ import annotations


class SmeAbmError(Exception):
    """Base class of every exception sme-abm raises on purpose."""


def printable(text: str) -> str:
    """``text`` with control characters (a newline in a file name, say) escaped, so a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ConfigError(SmeAbmError, ValueError):
    """A config or experiment file (or an override) that cannot be accepted.

    Attributes:
        source: The file (or ``"<dict>"``, ``"--set"``) the bad input came from.
        key: Dotted path of the offending key, or ``""`` for the whole file.
        reason: What is wrong and what is allowed.
    """

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = printable(str(source))
        self.key = printable(key)
        self.reason = " ".join(str(reason).split())
        where = f"{self.source}: {key}: " if key else f"{self.source}: "
        super().__init__(where + self.reason)


class AccountingError(SmeAbmError, RuntimeError):
    """An accounting identity failed: money appeared or vanished."""
