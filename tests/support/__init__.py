"""Test support: real servers (PostgreSQL, uvicorn on loopback) and shared helpers."""
