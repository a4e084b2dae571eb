import tuning  # noqa: F401 (first: it sets OMP_WAIT_POLICY before anything loads torch; see tuning/__init__)
