"""One paced, persisted way out for everything the bot sends."""
