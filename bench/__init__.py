"""leadbot's benchmarks: ack under load, the bot's overhead, lookup cost at scale and memory (see
docs/performance.md). Run with `python3 dev.py bench`; never part of the test run."""
