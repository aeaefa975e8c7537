"""The names file's SMDR settings as the SMDR figures take them (pure).

``[service_level]`` and ``[smdr]`` of the names file (docs/names.md,
state-model §8) are read and checked by :mod:`mitelacd.floor.names`, with the
rest of the file and reloaded with it; :func:`smdr_settings` hands them to
:class:`~mitelacd.reports.smdrcalls.SmdrDay` as a
:class:`~mitelacd.reports.smdrcalls.SmdrSettings`.

Path numbers: the names file takes a path reporting number as three digits,
as the 3300 sends it (``"860"``, ``"001"``), and :func:`~mitelacd.floor.smdr.parse_smdr`
gives a record's path as the digits after its ``P`` token (``P860`` →
``"860"``, ``P001`` → ``"001"``), which is the key
:meth:`SmdrSettings.target <mitelacd.reports.smdrcalls.SmdrSettings.target>`
looks up. The two are the same text, so the keys are passed on unchanged.
(The SX-200's four-digit path tokens, ``P0456``, have no three-digit key;
such a path counts against the default target.)
"""

from __future__ import annotations

from types import MappingProxyType

from mitelacd.floor.names import Names
from mitelacd.reports.smdrcalls import SmdrSettings


def smdr_settings(names: Names) -> SmdrSettings:
    """The SMDR figures' settings from a names file (the defaults for :data:`NO_NAMES`).

    ``confirmed`` is ``[smdr] confirmed``: while it is false, the figures
    that rest on [verify] readings are provisional.
    """
    level = names.service_level
    return SmdrSettings(
        short_abandon_seconds=level.short_abandon_seconds,
        service_level_seconds=level.seconds,
        path_service_level_seconds=MappingProxyType(dict(level.paths)),
        confirmed=names.smdr_confirmed,
    )
