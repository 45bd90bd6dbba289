"""The browser's time zone, remembered for the account (billing/formatting.py
explains how times are shown).

The shell (components/layout.py) asks the browser for
`Intl.DateTimeFormat().resolvedOptions().timeZone` when a signed-in page is
shown and sends it here. Anything but a known IANA name is ignored; a new zone
is stored and the page's own on_load handlers run again, so what is on screen
is redrawn in the new zone at once (no reload).
"""

from __future__ import annotations

import asyncio
import logging

from workroom_app.billing import formatting
from workroom_app.db import write_session
from workroom_app.state import page_open
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)


def _store(account_id: int, name: str) -> str | None:
    with write_session() as session:
        return formatting.store_account_zone(session, account_id, name)


class TimeZoneState(SessionState):
    # The last name this tab reported, so page changes do not write again.
    _reported_zone: str = ""

    async def remember_time_zone(self, name: str):
        account_id = self._account_id
        if account_id is None or not isinstance(name, str):
            return None
        known = formatting.known_zone_name(name)
        if known is None or known == self._reported_zone:
            return None
        self._reported_zone = known
        try:
            changed = await asyncio.to_thread(_store, account_id, known)
        except Exception:  # noqa: BLE001  (times stay in the old zone; try again next page)
            log.exception("storing the browser's time zone failed")
            self._reported_zone = ""
            return None
        if changed is None:
            return None
        self._timezone = known
        return page_open.loaders_for(self.router.page.path)
