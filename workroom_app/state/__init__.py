"""Thin Reflex states: they call billing/ and hold what pages show.

Every public method here is callable by any browser with any arguments, so
each validates what it receives and never takes ids, prices or roles from it.
"""
