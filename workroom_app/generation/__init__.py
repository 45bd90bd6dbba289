"""Generation: jobs (submit/cancel/finish with credits), providers, the worker.
Plain Python: no Reflex import here."""
