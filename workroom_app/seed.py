"""Demo data for `make run` / `workroom seed-demo`. Idempotent: it creates only
what is missing, so running it twice changes nothing the second time."""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app.billing import accounts, clock, periods, subscriptions
from workroom_app.db import write_session
from workroom_app.generation import jobs, renderers, uploads
from workroom_app.generation.worker import EXTENSIONS
from workroom_app.models import (
    Account,
    ActionType,
    GenerationJob,
    JobStatus,
    LedgerEntry,
    Role,
    Subscription,
)
from workroom_app.settings import get_settings

DEMO_URL = "http://localhost:3000"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    display_name: str
    role: str
    note: str


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin(
        "demo@workroom.test",
        "workroom-demo",
        "Demo User",
        Role.USER,
        "Pro plan with a few months of history",
    ),
    DemoLogin("free@workroom.test", "workroom-demo", "Free User", Role.USER, "trial credits only"),
    DemoLogin(
        "staff@workroom.test", "workroom-staff", "Staff Member", Role.ADMIN, "staff role (admin)"
    ),
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


_DEMO_SCRIPT = (
    "Welcome to Workroom. This short voiceover was generated for the demo account, so the history "
    "has something to play. Every generation is paid for with credits, and a failed one gives its "
    "credits back. Pick a feature, choose the options, and the button shows the cost before you "
    "click. Your plan decides the resolutions and lengths you can pick, and the Usage page lists "
    "every credit spent. Thanks for listening, and enjoy the tour of the app!"
)
# 120 characters: 8 seconds at the local renderer's 15 characters a second (the lip sync's audio).
_DEMO_LINE = "Hello from the Workroom demo! This line is the audio that the lip sync follows, word by word, for eight seconds."
_DEMO_LINE = (_DEMO_LINE + " " * 120)[:120]

# What the demo user generated each month: (day of the period, hour, request). Lip sync takes
# its duration from the audio uploaded with it (8 s, see _demo_uploads).
_DEMO_MONTH = (
    (
        1,
        11,
        {
            "feature": "image",
            "model": "flux_pro",
            "resolution": "2K",
            "count": 2,
            "prompt": "A cosy reading nook by a rainy window, warm lamp light",
        },
    ),
    (
        4,
        16,
        {
            "feature": "video",
            "model": "kling21",
            "resolution": "1080p",
            "duration": 5,
            "prompt": "Waves rolling onto a beach at sunset, slow pan",
        },
    ),
    (9, 10, {"feature": "voiceover", "model": "expressive", "text": _DEMO_SCRIPT}),
    (15, 14, {"feature": "lip_sync", "model": "standard", "resolution": "720p"}),
    (
        22,
        9,
        {
            "feature": "image",
            "model": "imagen4",
            "resolution": "1K",
            "count": 4,
            "prompt": "Four postcards of a lighthouse, one for each season",
        },
    ),
)
DEMO_HISTORY_MONTHS = 3
# The demo's one failed generation (its credits came back), as the worker would record it.
_DEMO_FAILURE = "The generation failed: the model service stopped responding (demo data)."


def demo_history_start(now: datetime) -> datetime:
    """When the demo user subscribed: about three months before `now`."""
    start = periods.add_months(now, -DEMO_HISTORY_MONTHS, now.day) - timedelta(days=4)
    return start.replace(hour=10, minute=12, second=0, microsecond=0)


def seed_demo_history(session: Session, account: Account) -> None:
    """The demo user's history: subscribed to Pro about three months ago with a
    saved Visa 4242, every monthly renewal paid, a few generations each month
    and one refunded (a failed generation), so Usage and Payment History look
    real.

    Everything goes through the real engine (subscriptions, ledger) with the
    clock pinned to each past moment, so the rows are exactly what the product
    would have written. Idempotent: an account with any subscription is left
    alone.
    """
    if session.exec(select(Subscription.id).where(Subscription.account_id == account.id)).first():
        return
    now = clock.now()
    start = demo_history_start(now)
    card = subscriptions.CardForm(
        "4242 4242 4242 4242", 12, now.year + 3, "123", account.display_name
    )
    with clock.pinned(start):
        outcome = subscriptions.subscribe(session, account.id, "pro", card=card)
    if not outcome.ok:
        return
    media = _DemoMedia(account.id)
    refunded = False
    for _ in range(DEMO_HISTORY_MONTHS + 2):
        sub = session.get(Subscription, outcome.subscription_id, populate_existing=True)
        period_start = periods.as_utc(sub.current_period_start)
        period_end = periods.as_utc(sub.current_period_end)
        for day, hour, request in _DEMO_MONTH:
            moment = (period_start + timedelta(days=day)).replace(hour=hour, minute=7)
            if moment >= min(period_end, now):
                continue
            full = media.request(request)
            _params, quote, _plan = jobs.price(session, account.id, full)
            if quote.cost <= 0:
                continue
            fail = not refunded and request["feature"] == "video"
            _seed_generation(session, account.id, full, moment, media, fail=fail)
            refunded = refunded or fail
        if period_end > now:
            break
        with clock.pinned(period_end):
            subscriptions.renew(session, sub.id, now=period_end)


def _seed_generation(
    session: Session,
    account_id: int,
    request: dict,
    moment: datetime,
    media: _DemoMedia,
    *,
    fail: bool,
) -> None:
    """One generation of the demo history, through the real job life cycle: submitted (priced and
    debited by jobs.submit, the debit referencing the job), taken by a worker, then finished with
    the renderer's real files, or failed with its credits refunded."""
    with clock.pinned(moment):
        job = jobs.submit(
            session,
            account_id,
            request,
            client_request_id=f"demo-{moment:%Y%m%dT%H%M}",
            provider="local",
        )
        jobs.claim(session, job.id, "demo-seed", lease_seconds=60)
    with clock.pinned(moment + timedelta(minutes=3 if fail else 1)):
        if fail:
            jobs.fail(session, job.id, JobStatus.FAILED, _DEMO_FAILURE)
            return
        paths, mime = media.store_outputs(job)
        jobs.succeed(session, job.id, paths[0], mime, output_count=len(paths))


def _demo_face() -> bytes:
    """A drawn face (16:9, so the lip sync's mouth lands on it) for the demo's lip sync upload."""
    from PIL import Image, ImageDraw  # noqa: PLC0415  (Pillow: loaded only to draw the demo)

    w, h = 640, 360
    img = Image.new("RGB", (w, h), (70, 110, 150))
    draw = ImageDraw.Draw(img)
    draw.ellipse([w // 2 - 105, h * 0.12, w // 2 + 105, h * 0.95], fill=(236, 196, 160))  # face
    for x in (w // 2 - 45, w // 2 + 45):  # eyes
        draw.ellipse([x - 14, h * 0.36, x + 14, h * 0.36 + 22], fill=(255, 255, 255))
        draw.ellipse([x - 6, h * 0.36 + 5, x + 6, h * 0.36 + 17], fill=(40, 40, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class _DemoMedia:
    """The demo history's files: drawn by the local renderer (the code real jobs use), once per
    kind of request, small, and copied for each month's job."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self._uploads: dict[str, str] | None = None
        self._rendered: dict[str, list[tuple[bytes, str]]] = {}

    def _demo_uploads(self) -> dict[str, str]:
        """The lip sync's inputs, stored as the user's uploads: a face and 8 s of speech."""
        if self._uploads is None:
            face = _demo_face()
            ((speech, _mime),) = renderers.render_voiceover(_DEMO_LINE, "demo")
            source = uploads.save_for_role(self.account_id, "lip_sync", "source", face)
            audio = uploads.save_for_role(self.account_id, "lip_sync", "audio", speech)
            self._uploads = {"source": source.ref, "audio": audio.ref}
        return self._uploads

    def request(self, request: dict) -> dict:
        if request["feature"] == "lip_sync":
            return {**request, "uploads": self._demo_uploads()}
        return dict(request)

    def store_outputs(self, job: GenerationJob) -> tuple[list[str], str]:
        key = f"{job.feature}/{job.model}:{job.params_json}"
        if key not in self._rendered:
            # The input the worker sends the renderer (providers/http.py build_input): the job's
            # parameters with its uploads inlined as data URIs.
            inputs = jobs.params(job)
            for role, ref in (inputs.pop("uploads", None) or {}).items():
                data = uploads.path_of(job.account_id, ref).read_bytes()
                inputs[role] = (
                    f"data:{uploads.mime_of(ref)};base64,{base64.b64encode(data).decode()}"
                )
            self._rendered[key] = renderers.render(f"{job.feature}/{job.model}", inputs)
        outputs = self._rendered[key]
        media_dir = get_settings().media_dir
        paths = []
        for index, (data, mime) in enumerate(outputs, start=1):
            relative = jobs.output_relative_path(
                job.account_id, job.id, index, EXTENSIONS.get(mime, "bin")
            )
            path = media_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            paths.append(relative)
        return paths, outputs[0][1]


def backfill_demo_jobs(session: Session, account: Account) -> int:
    """Older versions of seed-demo wrote the demo's generation debits without job rows, so its
    Generate history said "Nothing generated yet" while Usage listed generations. Give each such
    debit (idempotency key "demo:...") its job, linked by debit_entry_id (and the refund), with
    real files. Ledger rows are append-only and stay as they are. Returns the jobs added; an
    account that has any job is left alone."""
    if session.exec(select(GenerationJob.id).where(GenerationJob.account_id == account.id)).first():
        return 0
    debits = session.exec(
        select(LedgerEntry)
        .where(
            LedgerEntry.account_id == account.id,
            LedgerEntry.action_type == ActionType.GENERATION,
            LedgerEntry.idempotency_key.startswith("demo:"),
        )
        .order_by(LedgerEntry.id)
    ).all()
    if not debits:
        return 0
    media = _DemoMedia(account.id)
    # Which demo request each debit was, by feature and amount (the seeded month's prices on Pro).
    known = {}
    for _day, _hour, request in _DEMO_MONTH:
        full = media.request(request)
        params, quote, _plan = jobs.price(session, account.id, full)
        known[(request["feature"], int(quote.list_cost))] = (full, params, quote)
    added = 0
    for debit in debits:
        match = known.get((debit.feature, -debit.amount))
        if match is None:
            continue
        _full, params, quote = match
        refund = session.exec(
            select(LedgerEntry).where(
                LedgerEntry.reference_type == "debit", LedgerEntry.reference_id == str(debit.id)
            )
        ).first()
        at = debit.created_at
        job = GenerationJob(
            account_id=account.id,
            client_request_id=f"demo-debit-{debit.id}",
            feature=debit.feature,
            model=quote.request.model,
            params_json=json.dumps(params, sort_keys=True),
            cost=-debit.amount,
            unlimited=False,
            status=JobStatus.FAILED if refund else JobStatus.SUCCEEDED,
            progress=100,
            provider="local",
            debit_entry_id=debit.id,
            refund_entry_id=refund.id if refund else None,
            error=_DEMO_FAILURE if refund else None,
            created_at=at,
            started_at=at,
            finished_at=refund.created_at if refund else at + timedelta(minutes=1),
            deadline_at=at + timedelta(seconds=jobs.DEADLINE_SECONDS[debit.feature]),
            updated_at=refund.created_at if refund else at + timedelta(minutes=1),
        )
        session.add(job)
        session.flush()
        if not refund:
            paths, mime = media.store_outputs(job)
            job.output_path, job.output_mime, job.output_count = paths[0], mime, len(paths)
            session.add(job)
        added += 1
    session.flush()
    return added


def seed_demo(engine: Engine) -> list[str]:
    """Create the demo accounts that are missing; returns a line per action taken."""
    done: list[str] = []
    for login in DEMO_LOGINS:
        with write_session(engine) as session:
            if login.email == DEMO_EMAIL:
                # The demo user signed up (and got the trial) an hour before the
                # history starts, so Usage reads in time order.

                with clock.pinned(demo_history_start(clock.now()) - timedelta(hours=1)):
                    account, created = ensure_account(session, login)
            else:
                account, created = ensure_account(session, login)
            if created:
                done.append(f"created {login.email}")
            if login.email == DEMO_EMAIL:
                seed_demo_history(session, account)
                if backfill_demo_jobs(session, account):
                    done.append(f"added the generation history of {login.email}")
    return done


def demo_logins_text(url: str = DEMO_URL) -> str:
    lines = [f"Workroom is at {url}", "Demo logins:"]
    for login in DEMO_LOGINS:
        lines.append(f"  {login.email:<22} {login.password:<16} ({login.note})")
    return "\n".join(lines)
