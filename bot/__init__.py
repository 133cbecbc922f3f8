"""leadbot's Slack side and its command-line entry point."""
