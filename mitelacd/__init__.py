"""mitelacd: live call-centre floor state from a Mitel ICP's ACD real time events.

Data flows one way: ``feed`` (PBX links, framing, capture) → ``floor``
(records → state → change sets) → listeners (``web``, ``reports``,
``mqtt``, the legacy file). Each package's docstring says what it holds and, on its
``May import:`` line, which other parts of mitelacd it may import; a test
(tests/test_layers.py) holds the code to those lines.

The modules at this level are of two kinds. Utilities, which import no
other part of mitelacd but each other: ``logs`` (logging, the journald
observer, rate-limited log lines), ``cli`` (usage errors), ``clock``
(monotonic waits, a timeline that never runs back), ``pacing`` (coalesced
actions) and ``disk`` (writes that fail plainly). And the composition, which
may import anything: ``tap`` (the ``twistd mitelacd`` service), ``persist``
(the legacy file), ``sdnotify`` (systemd), ``openfiles`` (the open-file
limit) and ``plugincache``.

May import: mitelacd.floor, mitelacd.feed, mitelacd.web, mitelacd.reports, mitelacd.sim, mitelacd.mqtt
"""

#: The one place the version is written; setup.cfg reads it from here.
__version__ = "0.2.0"
