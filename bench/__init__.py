"""Benchmarks for the bridge and the Conversations emulator, each in its own process."""
