"""The `keel` command line (outside core: it starts processes and builds testbeds)."""
