"""The day's figures and their history.

``figures`` (the §7 figures, counted from change sets), ``live`` (the
figures in the daemon, ticked at interval ends), ``rows`` (interval rows and
state spans), ``smdrcalls`` (SMDR records into calls and per-path
interval figures), ``format`` (JSON and CSV), ``workbook`` (XLSX), ``store`` (the
history database), ``writer`` (the service that writes it), ``cli``
(``mitelacd-report``) and ``bench`` (a month of history, for the benchmark).

May import: mitelacd.floor, mitelacd.logs, mitelacd.clock, mitelacd.cli, mitelacd.disk, mitelacd.heap
"""
