"""Reading log files: the Bytewax source and what it needs to find, identify, read and resume files."""
