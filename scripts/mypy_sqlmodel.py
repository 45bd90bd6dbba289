"""A mypy plugin that types SQLModel table columns the way SQLAlchemy sees them.

SQLModel declares `id: int | None` on a table class, so mypy reads `Account.id` as an
`int | None` even where the code means the column: `Account.id == 5` is then a `bool`,
`Account.created_at.desc()` does not exist, and `select(Account.id, Account.email)` matches
no overload. At run time SQLAlchemy puts an `InstrumentedAttribute` on the class. This plugin
tells mypy the same thing, for class-level access only (an instance's `account.id` stays
`int | None`), and declares the class's `__table__`. With it, queries are checked against the
columns' real types instead of being silenced with casts or `col()` at every call site.

Used by `make typecheck` (pyproject.toml `[tool.mypy] plugins`).
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import MypyFile, NameExpr, TypeInfo, Var
from mypy.plugin import AttributeContext, ClassDefContext, Plugin
from mypy.plugins.common import add_attribute_to_class
from mypy.types import AnyType, Instance, Type, TypeOfAny

SQLMODEL = "sqlmodel.main.SQLModel"
INSTRUMENTED = "sqlalchemy.orm.attributes.InstrumentedAttribute"
TABLE = "sqlalchemy.sql.schema.Table"
MARK = "workroom_sqlmodel_table"


def _is_table_class(info: TypeInfo) -> bool:
    """A class declared `class X(SQLModel, table=True)` (or inheriting from one). Read from the
    mark _declare_table leaves in the class's metadata, which mypy's cache keeps (the class
    keywords themselves are gone when a module comes from the cache)."""
    return any(MARK in base.metadata for base in info.mro)


class SQLModelColumns(Plugin):
    def get_additional_deps(self, file: MypyFile) -> list[tuple[int, str, int]]:
        # The types this plugin returns must be loaded wherever a column is used.
        return [(10, "sqlalchemy.orm.attributes", -1), (10, "sqlalchemy.sql.schema", -1)]

    def get_class_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        class_name, _, attr = fullname.rpartition(".")
        if attr.startswith("_"):
            return None
        sym = self.lookup_fully_qualified(class_name)
        if sym is None or not isinstance(sym.node, TypeInfo) or not _is_table_class(sym.node):
            return None
        field = sym.node.get(attr)
        if field is None or not isinstance(field.node, Var) or field.node.is_classvar:
            return None
        instrumented = self.lookup_fully_qualified(INSTRUMENTED)
        if instrumented is None or not isinstance(instrumented.node, TypeInfo):
            return None
        info = instrumented.node
        return lambda ctx: Instance(info, [ctx.default_attr_type])

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        return _declare_table if fullname == SQLMODEL else None


def _declare_table(ctx: ClassDefContext) -> None:
    table = ctx.cls.keywords.get("table")
    if not (isinstance(table, NameExpr) and table.fullname == "builtins.True"):
        return
    ctx.cls.info.metadata[MARK] = {"table": True}
    if "__table__" in ctx.cls.info.names:
        return
    table_type = ctx.api.named_type_or_none(TABLE)
    if table_type is None:
        if not ctx.api.final_iteration:
            ctx.api.defer()
            return
        add_attribute_to_class(
            ctx.api, ctx.cls, "__table__", AnyType(TypeOfAny.special_form), is_classvar=True
        )
        return
    add_attribute_to_class(ctx.api, ctx.cls, "__table__", table_type, is_classvar=True)


def plugin(version: str) -> type[Plugin]:
    return SQLModelColumns
