"""Plain-Python billing: catalog, ledger, subscriptions, payments, invoices.

Nothing in this package imports Reflex, so states, HTTP routes, the worker,
the CLI and tests all use the same rules.
"""
