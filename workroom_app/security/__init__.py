"""Security plumbing shared by the states and the HTTP routes: the session cookie,
rate limits, the password-hashing pool, log redaction, request-body caps, text-input rules.
docs/security.md maps each threat to its defence and test."""
