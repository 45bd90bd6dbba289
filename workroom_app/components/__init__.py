"""Reusable component functions (plain functions of Vars)."""
