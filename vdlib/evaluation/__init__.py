"""The evaluate stage (``evaluate``) and its measures: realism against the footage (``realism``),
motion (``motion``) and the label classifier (``classifier``)."""
