"""Tests of the partner web page (``cloud.api.web``), partly in a real headless Chromium."""
