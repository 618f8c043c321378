"""Run code written against other serving frameworks' Python packages on infergraph.

Each subpackage stands in for one foreign package whose pins clash with infergraph's
stack. Nothing here is imported by ``import infergraph``; user code reaches it only
through the import alias installed when a component is loaded.
"""
