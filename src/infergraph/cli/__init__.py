"""Command-line parsing only; every command calls into the packages below."""
