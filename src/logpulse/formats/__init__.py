"""Log formats: one parser per format (today: logpulse's own)."""
