"""Adapt a user object once, at load, and call it per request.

Which methods exist, whether they are async, and whether they take ``meta`` are
decided here when the component is loaded; requests only call what was found.
"""
