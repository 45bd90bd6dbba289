"""Workroom billing: credits, generation, plans, subscriptions and payments."""
