"""Browser tests: the real app served by `reflex run --env prod`, driven in Chromium."""
