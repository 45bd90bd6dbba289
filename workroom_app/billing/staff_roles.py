"""Staff roles and what each may do.

- support: read everything; adjust a balance by at most the setting
  ``staff_support_adjust_limit`` credits at a time; send an email again; fail
  and refund a stuck generation; sign an account out everywhere; accept or
  decline a user's broken-result report (it returns credits for a generation,
  like failing a stuck one; no money moves).
- finance: read everything; refund invoices; run the reconciliation; process a
  failed Stripe webhook again; send an email again.
- admin: everything, including managing staff roles.

The legacy role "staff" (before migration 0007 turned every one into admin)
counts as admin, so an account created by older code keeps working.

Plain Python: the page hides what a role may not do (``can``), and every
billing function checks it again on the server (``require``).
"""

from __future__ import annotations

from enum import StrEnum

from workroom_app.models import Role
from workroom_app.settings import get_settings


class Permission(StrEnum):
    VIEW = "view"
    ADJUST = "adjust"
    REFUND = "refund"
    RECONCILE = "reconcile"
    REPLAY_WEBHOOK = "replay_webhook"
    RESEND_EMAIL = "resend_email"
    FAIL_JOB = "fail_job"
    REVOKE_SESSIONS = "revoke_sessions"
    DECIDE_REPORTS = "decide_reports"
    MANAGE_ROLES = "manage_roles"


STAFF_ROLES: tuple[str, ...] = (Role.SUPPORT.value, Role.FINANCE.value, Role.ADMIN.value)
# Roles an admin may give (user takes staff rights away).
ASSIGNABLE_ROLES: tuple[str, ...] = (Role.USER.value, *STAFF_ROLES)

PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.SUPPORT.value: frozenset(
        {
            Permission.VIEW,
            Permission.ADJUST,
            Permission.RESEND_EMAIL,
            Permission.FAIL_JOB,
            Permission.REVOKE_SESSIONS,
            Permission.DECIDE_REPORTS,
        }
    ),
    Role.FINANCE.value: frozenset(
        {
            Permission.VIEW,
            Permission.REFUND,
            Permission.RECONCILE,
            Permission.REPLAY_WEBHOOK,
            Permission.RESEND_EMAIL,
        }
    ),
    Role.ADMIN.value: frozenset(Permission),
}

ROLE_LABELS = {
    Role.USER.value: "User",
    Role.SUPPORT.value: "Support",
    Role.FINANCE.value: "Finance",
    Role.ADMIN.value: "Admin",
}

# What a refusal says, per permission.
REFUSALS = {
    Permission.VIEW: "Only staff members can use the staff dashboard.",
    Permission.ADJUST: "Your role cannot adjust balances.",
    Permission.REFUND: "Only finance and admin staff can refund invoices.",
    Permission.RECONCILE: "Only finance and admin staff can run the reconciliation.",
    Permission.REPLAY_WEBHOOK: "Only finance and admin staff can process webhooks again.",
    Permission.RESEND_EMAIL: "Your role cannot send emails again.",
    Permission.FAIL_JOB: "Only support and admin staff can fail and refund a generation.",
    Permission.REVOKE_SESSIONS: "Only support and admin staff can sign an account out everywhere.",
    Permission.DECIDE_REPORTS: "Only support and admin staff can decide reports.",
    Permission.MANAGE_ROLES: "Only admins can change staff roles.",
}


def effective_role(role: str | None) -> str | None:
    """The staff role behind an account's role string; None for non-staff."""
    if role == Role.STAFF.value:
        return Role.ADMIN.value
    return role if role in STAFF_ROLES else None


def is_staff_role(role: str | None) -> bool:
    return effective_role(role) is not None


def can(role: str | None, permission: Permission | str) -> bool:
    staff_role = effective_role(role)
    if staff_role is None:
        return False
    try:
        wanted = Permission(permission)
    except ValueError:
        return False
    return wanted in PERMISSIONS[staff_role]


def adjust_limit(role: str | None) -> int:
    """The largest adjustment (either way) this role may make at once; 0 for none."""
    from workroom_app.billing.staff import MAX_ADJUSTMENT  # noqa: PLC0415  (staff imports us)

    if not can(role, Permission.ADJUST):
        return 0
    if effective_role(role) == Role.SUPPORT.value:
        return min(get_settings().staff_support_adjust_limit, MAX_ADJUSTMENT)
    return MAX_ADJUSTMENT
