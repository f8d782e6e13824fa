"""The engine tier: tests that run the real Pulumi CLI on throw-away projects."""
