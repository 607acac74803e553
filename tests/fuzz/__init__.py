"""Random-architecture fuzzing of the engine (issue #15).

``generator.make_case(seed)`` builds one small random network (2-D image, 1-D conv or
token-sequence) from a plain ``random.Random(seed)``; ``checks.run_case`` runs the checks
every net must pass (equivalence, prune, other batch size, backward, input untouched).
``test_fuzz.py`` runs seeds 0..99 in the suite; ``python -m tests.fuzz.run --n 1000`` more.
"""
