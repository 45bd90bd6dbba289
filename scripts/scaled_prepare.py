"""`make run-scaled`'s first step (scripts/run-scaled.sh): create the PostgreSQL database named by
WORKROOM_DATABASE_URL if it is missing, and check that Redis (REFLEX_REDIS_URL) answers, so a
missing service stops the start with a clear message instead of a worker crash later."""

from __future__ import annotations

import os
import sys

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError


def main() -> int:
    url = make_url(
        os.environ["WORKROOM_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    )
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
                print(f"created database {url.database}")
    except OperationalError as exc:
        print(f"PostgreSQL at {url.render_as_string()} is not reachable: {exc}", file=sys.stderr)
        return 2
    finally:
        admin.dispose()
    redis_url = os.environ["REFLEX_REDIS_URL"]
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        print(f"Redis at {redis_url} is not reachable: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
