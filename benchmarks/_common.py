"""Pieces every benchmark needs: what machine it ran on, a throwaway PostgreSQL
database, and rewriting its own section of docs/benchmarks.md."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def cpu_model(default: str = "") -> str:
    """The first "model name" of /proc/cpuinfo, or `default` where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def ram_gib() -> float | None:
    try:
        match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 / 1024 if match else None


def load_average() -> float:
    # The 2 cores are shared with other people's work: the figure says how busy they were.
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


@contextmanager
def scratch_postgres(url: str) -> Iterator[URL]:
    """A fresh empty database on the server of `url` (libpq form accepted); yields its
    SQLAlchemy URL (psycopg driver) and drops it, connections and all, on exit.
    Dispose engines on it before leaving the block."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"wr_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.url.set(database=name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def write_section(heading: str, body: list[str]) -> None:
    """Replace only this benchmark's section (from `heading` up to the next "## "
    heading) of docs/benchmarks.md: other benchmarks own the rest."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    section = heading + "\n\n" + "\n".join(body).rstrip() + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        new = pattern.sub(lambda _m: section + "\n", current, count=1)
    else:
        new = current.rstrip() + "\n\n" + section
    DOCS.write_text(new.rstrip() + "\n")
