"""Wrappers that make any algorithm's update fast, each checked equal to the plain eager update
(``tests/test_accel.py``): ``torch.compile`` (``compiled``), CUDA-graph capture (``cuda_graph``), and
the choice between them (``runner``). The fused CPU layer stack lives with the layers, in
``softac.nn.fused``. None of them knows which algorithm it runs: an algorithm hands over two
functions, ``draw(phase)`` (its random draws) and ``compute(draws, phase)`` (losses, backward,
optimizer steps, target averaging; in place), plus the tensors those mutate."""
