"""Tests of the live protocol sources against real protocol servers."""
