"""The lockfile's file names, format version and default channel: what the command's parser shows in its help,
kept apart from the models so that ``--help`` does not load them."""

from __future__ import annotations

__all__ = ["DEFAULT_LOCKFILE", "DEFAULT_SELECTION_FILE", "LATEST", "LOCKFILE_VERSION"]

DEFAULT_SELECTION_FILE = "ucloud-images.toml"
DEFAULT_LOCKFILE = "ucloud-images.lock.json"
LOCKFILE_VERSION = 2
LATEST = "latest"  # the channel a selection's own pin is on
