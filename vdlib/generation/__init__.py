"""The render stage: how each model of the cascade makes frames in windows (``cascade``), what is
asked for (``conditions``) and the videos written (``render``)."""
