"""Tests of the admin listener: the rule playground."""
