"""Videos to frames (stages fetch and extract): ffmpeg (``video``), downloads and copies (``fetch``),
the built-in clips (``demo``, ``digits``), extraction (``extract``) and the frame store with its clip
windows and held-out split (``frames``)."""
