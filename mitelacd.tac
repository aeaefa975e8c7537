"""mitelacd as a .tac file, configured from the environment.

    MITELACD_HOST=icp.example twistd -ny mitelacd.tac

Each variable stands for the command-line option of ``twistd mitelacd`` it
is named after (docs/options.md has them all, with their defaults):

* with a value: MITELACD_HOST, MITELACD_PORT, MITELACD_SMDR,
  MITELACD_SMDR_LAYOUT, MITELACD_SMDR_IDLE, MITELACD_SIM_AGENTS,
  MITELACD_SIM_GROUPS, MITELACD_SIM_PATHS, MITELACD_SIM_SEED,
  MITELACD_SIM_SMDR_LAYOUT, MITELACD_FILE,
  MITELACD_WRITE_INTERVAL, MITELACD_CARRY_MAX_AGE,
  MITELACD_UNCONFIRMED_MAX_AGE, MITELACD_WATCHDOG, MITELACD_STALE_AFTER,
  MITELACD_RETRY_DELAY, MITELACD_MAX_RETRY_DELAY, MITELACD_HTTP,
  MITELACD_CORS_ORIGIN, MITELACD_PUSH_INTERVAL, MITELACD_LOG_LEVEL,
  MITELACD_NAMES, MITELACD_RECORD, MITELACD_RECORD_DAYS, MITELACD_DAY_STARTS,
  MITELACD_HISTORY, MITELACD_HISTORY_DAYS, MITELACD_HISTORY_SOURCE,
  MITELACD_MQTT, MITELACD_FAILOVER_SECONDS (empty or unset: the option's
  default);
* MITELACD_SOURCE: one ``--source`` a word (``a=rte://pbx-a b=rte://pbx-b``);
* flags, on when 1, yes, true or on: MITELACD_SIMULATE (instead of
  MITELACD_HOST), MITELACD_ACCESS_LOG, MITELACD_METRICS_PUBLIC,
  MITELACD_MQTT_DISCOVERY;
* MITELACD_TOKEN, the access token (``twistd mitelacd`` reads it too); the
  MQTT broker's password may be in the environment as well (docs/mqtt.md).

A bad value stops the start with the same message the command line would
give, and exit status 64.
"""

import os

from twisted.application.service import Application

from mitelacd.tap import makeService, options_from_environment

options = options_from_environment(os.environ)
application = Application("mitelacd")
makeService(options).setServiceParent(application)
