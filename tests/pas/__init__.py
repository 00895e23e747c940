"""Tests of PAS: $submit, adjudication, subscriptions and notifications, $inquire, updates."""
