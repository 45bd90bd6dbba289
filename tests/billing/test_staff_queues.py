"""Staff queue actions (billing/staff_queues.py): process a failed webhook
again, send an email again, fail and refund a stuck generation, sign an
account out everywhere. Each is role-checked, idempotent and audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from tests.support.generation import IMAGE, make_account
from tests.support.stripe_world import T0 as STRIPE_T0
from tests.support.stripe_world import make_world
from workroom_app.billing import accounts, clock, ledger, staff_queues
from workroom_app.billing.payments.stripe import StripeGateway
from workroom_app.billing.staff import NotAllowed, StaffError
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.models import OutboxEmail, Role, StaffAudit, WebhookEvent
from workroom_app.settings import Settings


def _staff(engine, role):
    with write_session(engine) as s:
        return accounts.sign_up(s, f"{role}@staff.test", "correct horse battery", role=role).id


def _audit(engine):
    with read_session(engine) as s:
        return [(a.action, a.result) for a in s.exec(select(StaffAudit).order_by(StaffAudit.id))]


def test_a_failed_webhook_is_processed_again_once(engine):
    with clock.pinned(STRIPE_T0):
        w = make_world(engine)
        finance = _staff(engine, Role.FINANCE)
        support = _staff(engine, Role.SUPPORT)
        user = w.sign_up("hook@example.com")
        w.checkout(user, "starter")
        events = w.standin.take_events()
        # Stripe could not be re-read (a wrong key): every delivery is stored as failed.
        broken = StripeGateway(
            Settings(**{**w.gateway.settings.model_dump(), "stripe_secret_key": "sk_wrong"}),
            http_client=w.standin.http_client(),
            max_network_retries=0,
        )
        from workroom_app.billing.stripe_webhooks import WebhookProcessor

        bad = WebhookProcessor(engine, broken, secret=w.standin.webhook_secret)
        [completed] = [e for e in events if e.type == "checkout.session.completed"]
        assert bad.process(completed.payload.encode(), completed.signature).outcome == "failed"
        assert w.subscription(user) is None
        with pytest.raises(NotAllowed):
            staff_queues.replay_webhook(engine, support, completed.id, gateway=w.gateway)
        first = staff_queues.replay_webhook(engine, finance, completed.id, gateway=w.gateway)
        assert first.done and "processed" in first.message
        assert w.subscription(user).plan_key == "starter" and w.balance(user) == 50 + 800
        again = staff_queues.replay_webhook(engine, finance, completed.id, gateway=w.gateway)
        assert not again.done and "nothing to do" in again.message
        assert w.balance(user) == 50 + 800
        with read_session(engine) as s:
            assert s.get(WebhookEvent, completed.id).outcome == "processed"
            assert [e.id for e in staff_queues.list_webhooks(s, finance, outcome="processed")] == [
                completed.id
            ]
        with pytest.raises(StaffError):
            staff_queues.replay_webhook(engine, finance, "evt_nope", gateway=w.gateway)
    assert _audit(engine) == [("replay_webhook", "done"), ("replay_webhook", "repeat")]


def test_send_again_queues_one_copy_of_a_sent_email_per_request(sqlite_engine):
    engine = sqlite_engine
    support = _staff(engine, Role.SUPPORT)
    with write_session(engine) as s:
        s.add(
            OutboxEmail(
                account_id=None,
                to_address="a@example.com",
                subject="Receipt",
                body_text="hi",
                dedupe_key="x1",
                status="sent",
                created_at=clock.now(),
                sent_at=clock.now(),
            )
        )
        s.add(
            OutboxEmail(
                account_id=None,
                to_address="b@example.com",
                subject="Receipt 2",
                body_text="hi",
                dedupe_key="x2",
                status="pending",
                last_error="SMTPServerDisconnected",
                attempts=2,
                created_at=clock.now(),
            )
        )
    first = staff_queues.resend_email(engine, support, 1, request_id="req-resend-1")
    again = staff_queues.resend_email(engine, support, 1, request_id="req-resend-1")
    assert first.done and not again.done
    with read_session(engine) as s:
        assert (
            len(s.exec(select(OutboxEmail).where(OutboxEmail.to_address == "a@example.com")).all())
            == 2
        )
        assert [e.id for e in staff_queues.list_emails(s, support, failed_only=True)] == [2]
    pending = staff_queues.resend_email(
        engine, support, 2, request_id="req-resend-2", settings=Settings(smtp_host="")
    )
    assert not pending.done and "SMTP" in pending.message
    with pytest.raises(StaffError):
        staff_queues.resend_email(engine, support, 99, request_id="req-resend-3")
    assert _audit(engine) == [
        ("resend_email", "done"),
        ("resend_email", "repeat"),
        ("resend_email", "failed"),
    ]


def test_a_stuck_generation_is_failed_and_refunded_once(engine):
    t0 = clock.now()
    with clock.pinned(t0):
        support = _staff(engine, Role.SUPPORT)
        finance = _staff(engine, Role.FINANCE)
        acct = make_account(engine, 100)
        with write_session(engine) as s:
            job = jobs.submit(s, acct, IMAGE, client_request_id="stuck-1")
        with pytest.raises(StaffError, match="still making progress"):
            staff_queues.fail_stuck_job(engine, support, job.id, reason="Provider lost it")
    with clock.pinned(t0 + timedelta(hours=2)):
        with read_session(engine) as s:
            assert [j.id for j in staff_queues.list_jobs(s, support, stuck_only=True)] == [job.id]
            steps = staff_queues.job_timeline(s.get(type(job), job.id))
            assert steps[0][1].startswith("submitted") and any("deadline" in w for _, w in steps)
        with pytest.raises(NotAllowed):
            staff_queues.fail_stuck_job(engine, finance, job.id, reason="Provider lost it")
        done = staff_queues.fail_stuck_job(engine, support, job.id, reason="Provider lost it")
        assert done.done and "16 credits refunded" in done.message
        again = staff_queues.fail_stuck_job(engine, support, job.id, reason="Provider lost it")
        assert not again.done
    with read_session(engine) as s:
        assert ledger.balance(s, acct) == 100
        assert s.get(type(job), job.id).status == "failed"


def test_sign_out_everywhere_revokes_every_live_login(engine):
    support = _staff(engine, Role.SUPPORT)
    finance = _staff(engine, Role.FINANCE)
    with write_session(engine) as s:
        user = accounts.sign_up(s, "u@example.com", "correct horse battery").id
        tokens = [accounts.create_login(s, user) for _ in range(3)]
    with write_session(engine) as s, pytest.raises(NotAllowed):
        staff_queues.sign_out_everywhere(s, finance, user, reason="Stolen laptop")
    with write_session(engine) as s:
        result = staff_queues.sign_out_everywhere(s, support, user, reason="Stolen laptop")
    assert result.done and "3 sessions" in result.message
    with read_session(engine) as s:
        assert all(accounts.lookup_session(s, t) is None for t in tokens)
    with write_session(engine) as s:
        assert not staff_queues.sign_out_everywhere(s, support, user, reason="Stolen laptop").done
