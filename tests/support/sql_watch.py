"""Which SQL a block of a test issues (SQLAlchemy's before_cursor_execute event)."""

from __future__ import annotations

from sqlalchemy import event


class LoginChecks:
    """The SQL statements that read auth_session while the block runs."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.statements: list[str] = []

    def _on_execute(self, _conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if "auth_session" in statement:
            self.statements.append(statement)

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self.statements

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        event.remove(self.engine, "before_cursor_execute", self._on_execute)
