"""A PERTINENCE-style input dispatcher over several models (dense, pruned or trees taking the same inputs): the
rule (``dispatcher.py``), its settings searched by a genetic algorithm (``genetic.py``, or pymoo's NSGA-II in
``nsga2.py``) for the front of accuracy against mean MACs, and ``sigmab dispatch`` from files (``pipeline.py``)."""
