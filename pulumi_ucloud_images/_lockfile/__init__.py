"""The lockfile: selections to pin, the pins and their history, read and written safely."""
