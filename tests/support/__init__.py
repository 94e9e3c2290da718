"""Helpers shared by the test files: fakes, real servers (OTLP receivers, PostgreSQL, the
viewer), a free port and the SDK tools the test agents call. Nothing here is a test."""
