"""Enforcement: the rules the policy pack and ``ucloud-images audit`` apply to hosts, from the lockfile alone."""
