"""Side-by-side benchmarks (issue #7): prunekit vs Torch-Pruning, torch.nn.utils.prune, random.

``python -m benchmarks.compare --quick`` (< 15 min on 2 cores) or without ``--quick`` for the
full protocol; ``python -m benchmarks.compare.minilm`` (needs transformers) for the MiniLM
task. Results go to ``docs/bench/results-<tag>.json``; ``docs/BENCHMARKS.md`` and its plots
are regenerated from them.
"""
