"""The enforcer tests' web ACL (holding foreign rules) for the CLI tests against moto."""

from tests.engine.enforcer.conftest import web_acl  # noqa: F401  (a fixture, used by name)
