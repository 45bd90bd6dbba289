"""The local test-mode gateway (the default: no keys, no network).

It behaves like Stripe's test mode for the numbers Stripe publishes: a saved
card becomes an opaque token; the token's behaviour (pays, declines with a
reason, or "attaches but every charge fails") is kept in its own vault table
(`local_card`), never the number. Charges are deterministic and idempotent:
the same idempotency key returns the first answer and charges once.

Its records live in our database and are written in the caller's transaction
when one is given, so a charge and what the engine makes of it commit (or roll
back) together.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import Session, select

from workroom_app import db
from workroom_app.billing import clock
from workroom_app.billing.payments import cards
from workroom_app.billing.payments.gateway import CardOnFile, ChargeResult, GatewayError
from workroom_app.models import LocalCard, LocalCharge

MAX_CHARGE_CENTS = 10**9  # ten million dollars: far beyond any plan
# A charge waiting for the card holder's confirmation (3-D Secure) is kept as a
# not-ok charge with this code until confirm_charge settles it.
REQUIRES_ACTION = "requires_action"

_C = LocalCharge.__table__
_K = LocalCard.__table__
# Prebuilt statements: a batch renewal run charges 100,000 times.
_charge_by_key = core_select(
    _C.c.ok,
    _C.c.gateway_ref,
    _C.c.failure_reason,
    _C.c.failure_code,
    _C.c.account_id,
    _C.c.amount_cents,
).where(_C.c.idempotency_key == bindparam("key"))
_card_by_token = core_select(_K.c.account_id, _K.c.behaviour, _K.c.exp_month, _K.c.exp_year).where(
    _K.c.token == bindparam("token")
)


@functools.lru_cache(maxsize=4)
def _insert_charge(dialect: str) -> ReturningInsert[Any]:
    fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return fn(_C).on_conflict_do_nothing(index_elements=[_C.c.idempotency_key]).returning(_C.c.id)


class CardDeclined(Exception):
    """The card was refused when saved (Stripe refuses its decline numbers at
    attach too). The message is the user-readable reason."""

    def __init__(self, decline: cards.Decline, card: cards.CardDetails) -> None:
        self.code = decline.code
        self.card = card
        super().__init__(decline.message)


class LocalGateway:
    name = "local"

    def __init__(self, engine: Any = None) -> None:
        self._engine = engine

    # ------------------------------------------------------------- sessions

    @contextmanager
    def _session(self, session: Session | None) -> Iterator[Session]:
        if session is not None:
            yield session
            return
        with db.write_session(self._engine or db.get_engine()) as own:
            yield own

    # ---------------------------------------------------------------- cards

    def tokenize(
        self,
        session: Session | None,
        account_id: int,
        number: object,
        exp_month: object,
        exp_year: object,
        cvc: object,
    ) -> tuple[CardOnFile, str]:
        """Check a card form and put the card in the vault.

        Returns (card, behaviour). Raises cards.CardInvalid for a form that
        cannot be a card. Decline numbers are tokenized like any card: what
        they do shows when they are charged or attached."""
        details = cards.require_valid_card(number, exp_month, exp_year, cvc)
        token = "card_local_" + secrets.token_hex(12)
        with self._session(session) as s:
            s.add(
                LocalCard(
                    token=token,
                    account_id=account_id,
                    brand=details.brand,
                    last4=details.last4,
                    exp_month=details.exp_month,
                    exp_year=details.exp_year,
                    behaviour=details.behaviour,
                    created_at=clock.now(),
                )
            )
            s.flush()
        return (
            CardOnFile(
                gateway_ref=token,
                brand=details.brand,
                last4=details.last4,
                exp_month=details.exp_month,
                exp_year=details.exp_year,
            ),
            details.behaviour,
        )

    def attach(
        self,
        session: Session | None,
        account_id: int,
        number: object,
        exp_month: object,
        exp_year: object,
        cvc: object,
    ) -> CardOnFile:
        """Save a card for later charges (replacing the card on file). The decline
        numbers are refused here with their reason; ...0341 is accepted."""
        card, behaviour = self.tokenize(session, account_id, number, exp_month, exp_year, cvc)
        decline = cards.decline_for(behaviour, on_attach=True)
        if decline is not None:
            raise CardDeclined(
                decline,
                cards.CardDetails(card.brand, card.last4, card.exp_month, card.exp_year, behaviour),
            )
        return card

    # --------------------------------------------------------------- charges

    def charge(
        self,
        account_id: int,
        payment_method: Any,
        amount_cents: int,
        currency: str,
        description: str,
        idempotency_key: str,
        *,
        session: Session | None = None,
        off_session: bool = False,
    ) -> ChargeResult:
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise GatewayError("The amount to charge must be a whole number of cents.")
        if not 0 < amount_cents <= MAX_CHARGE_CENTS:
            raise GatewayError("The amount to charge must be more than zero.")
        if (
            not isinstance(idempotency_key, str)
            or not idempotency_key
            or len(idempotency_key) > 200
        ):
            raise GatewayError("A charge needs an idempotency key.")
        token = getattr(payment_method, "gateway_ref", None)
        with self._session(session) as s:
            conn = s.connection()
            earlier = conn.execute(_charge_by_key, {"key": idempotency_key}).first()
            if earlier is not None:
                return self._replay(earlier, account_id, amount_cents)
            card = (
                conn.execute(_card_by_token, {"token": token}).first()
                if isinstance(token, str)
                else None
            )
            decline: cards.Decline | None
            if card is None or card.account_id != account_id:
                decline = cards.Decline(
                    "card_not_found", "This card is no longer on file. Add a card and try again."
                )
            else:
                decline = cards.decline_for(card.behaviour, on_attach=False)
                today = clock.now().date()
                if decline is None and (card.exp_year, card.exp_month) < (today.year, today.month):
                    decline = cards.DECLINES[cards.Behaviour.DECLINE_EXPIRED]
                if decline is None and cards.needs_authentication(
                    card.behaviour, off_session=off_session
                ):
                    decline = cards.Decline(
                        REQUIRES_ACTION, "Your bank asks you to confirm this payment."
                    )
            row: dict[str, Any] = dict(
                idempotency_key=idempotency_key,
                account_id=account_id,
                card_token=str(token)[:64],
                amount_cents=amount_cents,
                currency=currency,
                description=description[:500],
                ok=decline is None,
                # Derived from the key: the same request always names the same charge.
                gateway_ref="ch_local_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24],
                failure_code=decline.code if decline else None,
                failure_reason=decline.message if decline else None,
                refunded_at=None,
                created_at=clock.now(),
            )
            try:
                inserted = conn.execute(_insert_charge(conn.dialect.name), row).scalar()
            except IntegrityError:  # e.g. an account that does not exist
                raise GatewayError("Unknown account: nothing was charged.") from None
            if inserted is None:
                # A concurrent request with the same key won: report its answer.
                earlier = conn.execute(_charge_by_key, {"key": idempotency_key}).first()
                return self._replay(earlier, account_id, amount_cents)
            return ChargeResult(
                ok=row["ok"],
                gateway_ref=row["gateway_ref"],
                failure_reason=row["failure_reason"],
                failure_code=row["failure_code"],
                requires_action=row["failure_code"] == REQUIRES_ACTION,
            )

    def settle_authentication(
        self,
        idempotency_key: str,
        *,
        confirmed: bool,
        failure_code: str = "payment_intent_authentication_failure",
        failure_reason: str = "We are unable to authenticate your payment method.",
        session: Session | None = None,
    ) -> ChargeResult:
        """The card holder confirmed (the charge is taken now) or did not (it fails
        with the reason). Only a charge still waiting changes; any other is
        returned as it is, so settling twice changes nothing."""
        with self._session(session) as s:
            row = s.exec(
                select(LocalCharge).where(LocalCharge.idempotency_key == idempotency_key)
            ).first()
            if row is None:
                raise GatewayError("There is no such payment.")
            if not row.ok and row.failure_code == REQUIRES_ACTION:
                row.ok = confirmed
                row.failure_code = None if confirmed else failure_code
                row.failure_reason = None if confirmed else failure_reason
                s.add(row)
                s.flush()
            return self._result(row)

    def refund(self, gateway_ref: str, *, session: Session | None = None) -> bool:
        """Give a charge's money back (once). True when it is refunded now or was."""
        with self._session(session) as s:
            row = s.exec(select(LocalCharge).where(LocalCharge.gateway_ref == gateway_ref)).first()
            if row is None or not row.ok:
                return False
            if row.refunded_at is None:
                row.refunded_at = clock.now()
                s.add(row)
            return True

    @staticmethod
    def _result(row: Any) -> ChargeResult:  # a LocalCharge row
        return ChargeResult(
            ok=row.ok,
            gateway_ref=row.gateway_ref,
            failure_reason=row.failure_reason,
            failure_code=row.failure_code,
            requires_action=row.failure_code == REQUIRES_ACTION,
        )

    def _replay(self, row: Any, account_id: int, amount_cents: int) -> ChargeResult:
        if row.account_id != account_id or row.amount_cents != amount_cents:
            raise GatewayError("This idempotency key was already used for a different charge.")
        return self._result(row)


def make_gateway(settings: object = None) -> LocalGateway:
    return LocalGateway()
