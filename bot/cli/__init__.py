"""The cds-bot command, the terminal chat and the demo ward."""
