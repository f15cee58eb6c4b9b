"""Benchmark cases, one module per topic family; imported by ``load_cases``."""
