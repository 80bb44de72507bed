"""MoE load-balancing-loss problem: trainer, data and evaluator modules (see README.md)."""
