"""The staff accounts dashboard's state (/staff/accounts). The work is
billing/staff.py and its neighbours; this state is one Reflex state made of
one mixin per concept:

- state/staff_base.py      who is asking, what their role may do, refusals
- state/staff_accounts.py  search, the selected account's page and ledger
- state/staff_confirm.py   review → confirm → apply once (adjust and refund share it)
- state/staff_adjust.py    balance adjustments
- state/staff_refunds.py   invoice refunds
- state/staff_sessions.py  sign out everywhere
- state/staff_role_change.py  role changes
- state/staff_reconcile.py the reconciliation
- state/staff_audit.py     the audit list

Every handler re-checks on the server that the caller is staff: it re-reads
the login behind the cookie (so a revoked login or a demoted role stops
working at once), and billing checks the role again inside each transaction.
`is_staff` on SessionState only decides what the sidebar shows.

What the browser may send: a search text, an account id (accepted only when
it is one of the search results this server sent to this tab), an invoice id
(only one listed for that account), and the forms' fields. Adjustments and
refunds are applied from what the server kept when the confirmation dialog
opened, never from arguments, under a request id made when the form opened:
the same confirmation twice applies once.
"""

from __future__ import annotations

import asyncio

from workroom_app.billing import staff
from workroom_app.billing.staff import StaffError, StaffOnly
from workroom_app.state.session import SessionState
from workroom_app.state.staff_accounts import NOT_IN_RESULTS, StaffAccounts, account_details
from workroom_app.state.staff_adjust import StaffAdjust
from workroom_app.state.staff_base import NOT_STAFF
from workroom_app.state.staff_reconcile import StaffReconcile
from workroom_app.state.staff_refunds import StaffRefunds
from workroom_app.state.staff_role_change import StaffRoleChange
from workroom_app.state.staff_sessions import StaffSessions

__all__ = ["NOT_IN_RESULTS", "NOT_STAFF", "StaffState"]


class StaffState(
    StaffAccounts,
    StaffAdjust,
    StaffRefunds,
    StaffSessions,
    StaffRoleChange,
    StaffReconcile,
    SessionState,  # a state of its own: a class made only of mixins would be one too
):
    def _close_forms(self) -> None:
        self._close_adjustment()
        self._close_refund()

    def _clear_selection(self) -> None:
        self._clear_account()
        self.sessions_error = ""
        self.role_error = ""
        self._close_forms()

    def _forget(self) -> None:
        """Drop everything the dashboard holds (used when the caller is not staff)."""
        self.allowed = False
        self.loading = False
        self._forget_accounts()
        self._clear_selection()

    async def load(self):
        """on_load (after the login guard): staff only; lists the first accounts."""
        self._forget()
        if self._account_id is None:  # signed out: the guard has redirected
            return None
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        self.allowed = True
        try:
            await self._show_recent_audit(actor)
            # ?q=<email> (links from the overview): search for it, open it when it is the only match.
            wanted = self.router.url.query_parameters.get("q", "")
            query = staff.check_query(wanted if isinstance(wanted, str) else "")
            await self._run_search(actor, query)
            if query and len(self._result_ids) == 1:
                overview, page, extras = await asyncio.to_thread(
                    account_details, actor, self._result_ids[0]
                )
                self._show_details(overview, page, extras)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.search_error = str(exc)
        return None
