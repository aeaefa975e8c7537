"""A simulated ICP, for trying mitelacd without a PBX and for the tests.

``service`` (``twistd mitelacd-sim``), ``floor`` (a floor of agents taking
calls), ``names`` (made-up names for its agents, groups and paths),
``schedule`` (its clock), ``wire`` (records as the PBX encodes them) and
``replayserver`` (a capture served on TCP).

May import: mitelacd.floor, mitelacd.feed, mitelacd.logs, mitelacd.cli
"""
