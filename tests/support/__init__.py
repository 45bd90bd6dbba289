"""What the tests share (no tests here): factories, fixtures, the event-path harness, the tabs
of the pages, the fakes (Stripe, the hosted provider), sample media, serving the app."""
