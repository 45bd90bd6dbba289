"""Settings from the environment (prefix WORKROOM_), validated once.

Every knob that differs between a laptop, CI and production lives here, so no
module reads os.environ on its own.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

from limits import parse_many
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKROOM_", extra="ignore")

    # SQLite under var/ by default; WORKROOM_DATABASE_URL selects PostgreSQL.
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'workroom.db'}"
    catalog_path: Path = Path(__file__).resolve().parent / "billing" / "catalog" / "catalog.toml"
    # Where generated files and uploads are kept.
    media_dir: Path = REPO_ROOT / "var" / "media"
    session_days: int = Field(default=30, ge=1)
    # Links in emails and pages. Unset, it follows PORT (what `make run` serves on).
    public_url: str = ""

    # Payments: "local" (test mode, no keys) or "stripe".
    payment_gateway: str = "local"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_price_starter: str = ""
    stripe_price_pro: str = ""
    stripe_price_studio: str = ""

    # Generation provider: "local" (ships with the app) or "hosted".
    generation_provider: str = "local"
    local_provider_url: str = "http://127.0.0.1:3100"
    local_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    hosted_provider_url: str = ""
    hosted_provider_token: str = ""
    hosted_provider_timeout: float = Field(default=30.0, gt=0)
    hosted_provider_retries: int = Field(default=3, ge=0, le=10)
    # Seconds the local renderer takes per job (progress advances over them);
    # tests set it near zero.
    local_render_seconds: float = Field(default=4.0, ge=0.0, le=600.0)
    # Worker: how often it looks for jobs, how many it runs at once, and how
    # long its claim on a job lasts without renewal before another worker may
    # take the job over (a dead worker's jobs resume after this).
    worker_poll_interval: float = Field(default=0.5, gt=0)
    worker_max_parallel: int = Field(default=4, ge=1, le=10_000)
    worker_lease_seconds: float = Field(default=30.0, gt=0)

    # Change notifications (workroom_app/notifications.py): auto, postgres, redis or local.
    notify: str = "auto"
    # Redis for change notifications; Reflex's own REFLEX_REDIS_URL is used when this is unset.
    redis_url: str = Field(
        default="", validation_alias=AliasChoices("WORKROOM_REDIS_URL", "REFLEX_REDIS_URL")
    )
    notify_channel: str = ""  # Redis channel; default: one derived from the database URL
    # Billing scheduler (renewals) in `workroom worker`: one active per deployment.
    run_scheduler: bool = True
    # Benchmarks: count SQL statements per process into this directory (sql_counter.py).
    sql_count_dir: str = ""

    # Receipts: with no SMTP host the emails stay in the outbox.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "Workroom <billing@workroom.test>"

    @model_validator(mode="after")
    def _public_url_follows_port(self) -> Settings:
        if not self.public_url:
            port = os.environ.get("PORT", "").strip() or "3000"
            self.public_url = f"http://localhost:{port}"
        return self

    @model_validator(mode="after")
    def _media_dir_exists(self) -> Settings:
        # A fresh clone has no var/: create what the app writes into on start.
        # A folder that cannot be made is reported by whatever writes there.
        with contextlib.suppress(OSError):
            self.media_dir.mkdir(parents=True, exist_ok=True)
        return self

    # Staff: the most credits a support-role member may add or remove in one
    # adjustment (finance and admin go up to billing/staff.MAX_ADJUSTMENT).
    staff_support_adjust_limit: int = Field(default=1000, ge=0)
    # Security. Signs the email-confirmation links; empty: generated once and kept in
    # the database (app_setting). Rate-limit counters: "memory://" (one process) or a
    # redis:// URL shared by every worker.
    secret_key: str = ""
    rate_limit_storage: str = "memory://"
    # Per client address (the `limits` notation; several tiers separated by ";").
    rate_limit_login_per_address: str = "20/minute;100/hour;500/day"
    rate_limit_signup_per_address: str = "3/hour;10/day"

    @field_validator("rate_limit_login_per_address", "rate_limit_signup_per_address")
    @classmethod
    def _rate_limits_parse(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '3/hour;10/day': {value!r}") from exc
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
