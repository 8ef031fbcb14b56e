"""Tests of the partner web page (``renkei.cloud.api.web``), partly in a real headless Chromium."""
