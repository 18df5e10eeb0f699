"""sluiceway."""
