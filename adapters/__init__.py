"""Delivery adapters: one module per channel behind `adapters.base.Adapter`."""
