"""The web side: what boards, people and Prometheus read over HTTP.

``resources`` (the site: legacy JSON, the API, /healthz, the board page),
``push`` (the event stream), ``message`` (the message on every board, kept
in its file), ``accesslog``, ``endpoint`` (``--http`` checked before
anything starts), ``metrics`` and ``figuremetrics`` (/metrics), ``reports``
(the reports API) and ``board/`` (the wall board page).

May import: mitelacd.floor, mitelacd.reports, mitelacd.logs, mitelacd.clock, mitelacd.pacing, mitelacd.cli, mitelacd.disk
"""
