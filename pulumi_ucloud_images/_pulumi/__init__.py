"""The Pulumi faces: functions, PinnedImage, the pin service, the provider plugin and its schema."""
