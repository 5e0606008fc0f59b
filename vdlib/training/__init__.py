"""The training stages: batches of clips from the frame store (``clips``), the loop (``train``) and
starting it on several processes and machines (``launch``)."""
