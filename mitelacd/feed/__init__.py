"""The feed: PBX links and what comes over them, as read.

``protocol`` (framing and the reconnecting client), ``capture`` (what
``--record`` keeps) and ``replay`` (``mitelacd-replay``: a capture through
the parser and the floor, and with ``--history`` into the day's figures).

May import: mitelacd.floor, mitelacd.reports, mitelacd.logs, mitelacd.clock, mitelacd.cli, mitelacd.disk
"""
