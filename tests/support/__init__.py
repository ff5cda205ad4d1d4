"""Helpers shared by the tests: emulators, platforms, fakes that fail on purpose."""
