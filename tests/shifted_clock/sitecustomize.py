"""Shifts this process's wall clock when LOYALTY_TEST_CLOCK_OFFSET_S is set (tests only).

Found through PYTHONPATH by tests/shifted_clocks.sh, so that pytest and every Python process
it starts (the services of the e2e tests) see the same shifted date and time. Monotonic clocks
stay real: they measure timeouts, not dates.
"""

import os
import time

_offset = os.environ.get("LOYALTY_TEST_CLOCK_OFFSET_S")
if _offset:
    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()
