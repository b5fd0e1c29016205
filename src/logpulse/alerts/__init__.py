"""Alert delivery: a persisted outbox (a Bytewax step) and the Alertmanager and webhook receivers."""
