"""The ``wafsmith`` command line: one module per subcommand."""
