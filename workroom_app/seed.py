"""Demo data for `make run` / `workroom seed-demo`. Idempotent: it creates only
what is missing, so running it twice changes nothing the second time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from workroom_app.billing import accounts
from workroom_app.models import Account, Role

DEMO_URL = "http://localhost:3000"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    display_name: str
    role: str
    note: str


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("demo@workroom.test", "workroom-demo", "Demo User", Role.USER,
              "Pro plan with a few months of history"),
    DemoLogin("free@workroom.test", "workroom-demo", "Free User", Role.USER,
              "trial credits only"),
    DemoLogin("staff@workroom.test", "workroom-staff", "Staff Member", Role.STAFF, "staff role"),
)
DEMO_EMAIL = DEMO_LOGINS[0].email


def ensure_account(session: Session, login: DemoLogin) -> tuple[Account, bool]:
    """The demo account, created (with its trial) if missing. Returns (account, created)."""
    account = accounts.find_account(session, login.email)
    if account is not None:
        return account, False
    account = accounts.sign_up(
        session, login.email, login.password, login.display_name, role=login.role
    )
    return account, True


def seed_demo_history(session: Session, account: Account) -> None:
    """Hook: the demo user's Pro subscription and months of history.

    Wired by the subscriptions work; it must be idempotent itself (it runs on
    every `workroom seed-demo`).
    """
    return None


def seed_demo(engine: Engine) -> list[str]:
    """Create the demo accounts that are missing; returns a line per action taken."""
    from workroom_app.db import write_session

    done: list[str] = []
    for login in DEMO_LOGINS:
        with write_session(engine) as session:
            account, created = ensure_account(session, login)
            if created:
                done.append(f"created {login.email}")
            if login.email == DEMO_EMAIL:
                seed_demo_history(session, account)
    return done


def demo_logins_text(url: str = DEMO_URL) -> str:
    lines = [f"Workroom is at {url}", "Demo logins:"]
    for login in DEMO_LOGINS:
        lines.append(f"  {login.email:<22} {login.password:<16} ({login.note})")
    return "\n".join(lines)
