"""Development tools shared by the test suite and the benchmark harness (never by the server)."""
