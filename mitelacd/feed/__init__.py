"""The feed: PBX links and what comes over them, as read.

``protocol`` (framing and the reconnecting client), ``smdr`` (the SMDR
link of ``--smdr``), ``capture`` (what ``--record`` keeps: both streams),
``replay`` (``mitelacd-replay``: a capture through the parser and the
floor, and with ``--history`` into the day's figures) and ``smdrcheck``
(``mitelacd-smdr-check``).

May import: mitelacd.floor, mitelacd.reports, mitelacd.logs, mitelacd.clock, mitelacd.cli, mitelacd.disk
"""
