"""A simulated ICP, for trying mitelacd without a PBX and for the tests.

``service`` (``twistd mitelacd-sim``), ``floor`` (a floor of agents taking
calls), ``callers`` (the callers behind its calls, their SMDR records and
the ledger of them), ``controllers`` (a site of several controllers, its
failover and the merged floor of state-model §9), ``names`` (made-up names
for its agents, groups and paths), ``schedule`` (its clock), ``wire``
(records as the PBX encodes them), ``smdrwire`` (SMDR lines in any layout)
and ``replayserver`` (a capture served on TCP).

May import: mitelacd.floor, mitelacd.feed, mitelacd.logs, mitelacd.cli
"""
