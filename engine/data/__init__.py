"""Data the engine ships with: the detection pattern lists under ``patterns/``.

Read through ``importlib.resources`` so an installed wheel finds them beside its code; each
list's header says where its entries come from.
"""
