"""The floor: records in, live state out, change sets to listeners (the pure core).

``records`` (the wire format, pure), ``smdr`` (SMDR records by layout,
pure), ``names`` (the site's names file), ``legacy`` (the
``mitel_data.json`` shape), ``changes`` (change sets and the listener
interface), ``state`` (the one owner of agents, groups, paths and
feed health), ``documents`` and ``render`` (documents kept from change sets;
``render`` also says how instants and ids are written), ``carry`` and
``dayturn`` (letting carried agents go, forgetting at the day's start) and
``days`` (report days and quarter hours).

It knows nothing of sockets, files or HTTP; clocks come in as arguments.

May import: mitelacd.logs, mitelacd.clock, mitelacd.cli
"""
