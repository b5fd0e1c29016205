"""Reading log files: the Bytewax source, the dead-letter file."""
