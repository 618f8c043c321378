"""Tests of the project as a whole: the docs, the demo, the public API."""
