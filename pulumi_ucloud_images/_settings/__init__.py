"""Settings: where the region, keys, project and endpoint come from, and the scope a lookup runs in."""
