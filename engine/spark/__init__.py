"""Spark execution of wafsmith's analysis (the optional ``spark`` extra, PySpark 4).

A composition package like ``engine.cli``: it runs the parsers, the features stage and the
``Analyzer`` inside a Spark job and adds no feature maths of its own. ``batch`` is
``wafsmith analyze --engine spark``; ``partials`` moves pane partials between executors;
``session`` builds the SparkSession. PySpark is imported only when a session is built.
"""
