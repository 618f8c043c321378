"""Pure codecs: every wire format becomes one internal :class:`Message` and back.

No I/O, logging or global state lives here. Seldon JSON and Seldon protobuf are
decoded into the same ``Message`` before any component or graph sees it.
"""
