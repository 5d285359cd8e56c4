"""Test support code: not part of the product."""
