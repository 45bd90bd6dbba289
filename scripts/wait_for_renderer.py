"""`make run-scaled` (scripts/run-scaled.sh): wait until the separate `workroom local-renderer`
answers at WORKROOM_LOCAL_PROVIDER_URL before the generation workers start, so no worker starts
a renderer of its own on that port (each port has one owner)."""

from __future__ import annotations

import sys
import time

from workroom_app.generation.providers.local import is_reachable
from workroom_app.settings import get_settings

WAIT_SECONDS = 30.0


def main() -> int:
    url = get_settings().local_provider_url
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if is_reachable(url):
            return 0
        time.sleep(0.2)
    print(
        f"the local renderer did not answer at {url} within {WAIT_SECONDS:.0f} s", file=sys.stderr
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
