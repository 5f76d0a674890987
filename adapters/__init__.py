"""Delivery adapters: one module per channel behind `leadrules.adapters.base.Adapter`."""
