"""pytest fixtures for offline tests against the bundled DescribeImage emulator."""
