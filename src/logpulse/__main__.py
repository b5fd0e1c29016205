"""`python -m logpulse` is the `logpulse` command."""

from logpulse.cli import main

main()
