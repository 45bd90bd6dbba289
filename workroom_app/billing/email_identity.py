"""When two spellings of an email address reach the same mailbox (the trial is once per mailbox).

The rule (README, Decisions):
- the whole address is compared case-insensitively;
- everything from the first "+" in the local part is a tag and is dropped (every large provider
  delivers name+tag@ to name@; a provider that does not only makes us stricter, never looser);
- for gmail.com and googlemail.com (one provider, two domains) dots in the local part are ignored
  too and both domains count as gmail.com, because Gmail delivers n.a.m.e@ to name@.
"""

from __future__ import annotations

_DOTS_IGNORED = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_email(email: str) -> str:
    local, _, domain = email.strip().lower().rpartition("@")
    if not local:
        return email.strip().lower()
    local = local.split("+", 1)[0]
    if domain in _DOTS_IGNORED:
        local = local.replace(".", "")
        domain = _DOTS_IGNORED[domain]
    return f"{local or '+'}@{domain}"
