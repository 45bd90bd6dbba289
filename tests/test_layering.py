"""The layers hold: a Reflex state reads and changes things only through billing/ (and the
other plain-Python layers), never through a payment gateway, a webhook module or another
module's private names. Gateway decisions live in billing/ (gateway_dispatch.py,
subscriptions/plan_actions.py, pack_checkout.py), so a state that needs one has a public
billing function to call instead.

Parsed with ast, so late imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import workroom_app

STATE_DIR = Path(workroom_app.__file__).parent / "state"

# A state may not import these modules (or anything under them).
FORBIDDEN = (
    "stripe",  # the SDK
    "workroom_app.billing.payments",  # the gateways (local, Stripe) and card handling
    "workroom_app.billing.stripe_webhooks",
    "workroom_app.billing.stripe_refunds",
)


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _ours(module: str) -> bool:
    return module == "workroom_app" or module.startswith("workroom_app.")


def violations(path: Path) -> list[str]:
    """What `path` imports that a state may not, as "file:line: what" lines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = "workroom_app.state." + path.stem
    found: list[str] = []
    module_names: dict[str, str] = {}  # local name -> the workroom_app module it is bound to

    def bad(node: ast.AST, what: str) -> None:
        found.append(f"{path.name}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden(alias.name):
                    bad(node, f"import {alias.name} (a gateway or webhook module)")
                if _ours(alias.name):
                    module_names[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if _forbidden(module) or _forbidden(full):
                    bad(node, f"from {module} import {alias.name} (a gateway or webhook module)")
                elif _ours(module) and module != here and _private(alias.name):
                    bad(node, f"from {module} import {alias.name} (private to {module})")
                elif _ours(module):
                    module_names[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_names
            and _private(node.attr)
        ):
            target = module_names[node.value.id]
            # Only modules count: `from x import SomeState` then SomeState._var is a state's
            # own backend var, read through the state class.
            if target != here and _is_module(target):
                bad(node, f"{node.value.id}.{node.attr} (private to {target})")
    return found


def _is_module(dotted: str) -> bool:
    root = Path(workroom_app.__file__).parent.parent
    rel = Path(*dotted.split("."))
    return (root / rel).with_suffix(".py").exists() or (root / rel / "__init__.py").exists()


# Known, each in a file another change owns; remove the entry with the fix (the test fails
# when an entry no longer occurs, so this list only shrinks).
KNOWN: set[str] = set()


def _without_line(violation: str) -> str:
    name, _line, what = violation.split(":", 2)
    return f"{name}:{what}"


def test_states_import_no_gateway_no_webhook_and_no_private_name():
    found = [v for path in sorted(STATE_DIR.glob("*.py")) for v in violations(path)]
    problems = [v for v in found if _without_line(v) not in KNOWN]
    assert problems == [], "states must go through billing/:\n" + "\n".join(problems)
    fixed = KNOWN - {_without_line(v) for v in found}
    assert not fixed, "fixed: remove from KNOWN:\n" + "\n".join(sorted(fixed))


def test_the_check_catches_each_kind_of_violation(tmp_path):
    bad = tmp_path / "bad_state.py"
    bad.write_text(
        "import stripe\n"
        "from workroom_app.billing import stripe_webhooks\n"
        "from workroom_app.billing.payments.stripe import StripeGateway\n"
        "from workroom_app.billing.subscriptions import _charge\n"
        "from workroom_app.billing import subscriptions\n"
        "def f():\n"
        "    from workroom_app.billing.payments import get_gateway\n"
        "    return subscriptions._plan_credits_left\n"
    )
    found = violations(bad)
    assert [line.split(":")[1] for line in found] == ["1", "2", "3", "4", "7", "8"], found
    assert "subscriptions._plan_credits_left" in found[-1]


def test_a_clean_state_passes(tmp_path):
    good = tmp_path / "good_state.py"
    good.write_text(
        "from workroom_app.billing import subscriptions\n"
        "from workroom_app.billing.subscriptions import plan_actions\n"
        "def f(state):\n"
        "    return plan_actions.swap, subscriptions.summary, state._account_id\n"
    )
    assert violations(good) == []
