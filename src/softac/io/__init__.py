"""Files on disk, by job: safe files (``files``), the run-directory layout (``rundir``), agent state
↔ tensors and checkpoints (``state``), and rebuilding agents from checkpoints (``load``)."""
