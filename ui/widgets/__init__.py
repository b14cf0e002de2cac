"""Reusable dashboard widgets (filters, progress, grid, scatter, detail)."""
