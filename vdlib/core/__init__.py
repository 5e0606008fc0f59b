"""What every stage shares: the one user-facing error and atomic outputs (``common``), the named
random streams (``randomness``) and core sharing between processes (``cores``)."""
