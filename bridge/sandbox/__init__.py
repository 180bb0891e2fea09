"""The sandbox: a local stand-in for Twilio, served under ``/sandbox/``.

One subpackage per emulated product (``conversations``), the agent console (``console``),
the development sign-in provider (``idp``), and ``shared``: SIDs, errors, paging and the
REST surface every product uses. ``app`` puts them together; ``python -m bridge.sandbox``
serves them alone.
"""
