"""mitelacd as a .tac file, configured from the environment.

    MITELACD_HOST=icp.example twistd -ny mitelacd.tac

MITELACD_HOST (or MITELACD_SIMULATE=1), MITELACD_PORT, MITELACD_FILE,
MITELACD_WRITE_INTERVAL, MITELACD_WATCHDOG, MITELACD_STALE_AFTER, MITELACD_MAX_RETRY_DELAY,
MITELACD_PUSH_INTERVAL, MITELACD_LOG_LEVEL and the others the README lists
stand for the command-line options of ``twistd mitelacd``; a bad value stops
the start with the same message the command line would give.
"""

import os

from twisted.application.service import Application

from mitelacd.tap import makeService, options_from_environment

options = options_from_environment(os.environ)
application = Application("mitelacd")
makeService(options).setServiceParent(application)
