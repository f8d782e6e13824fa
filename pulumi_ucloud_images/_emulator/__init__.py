"""The DescribeImage emulator: its catalogue, its request handling, and how its answers travel."""
