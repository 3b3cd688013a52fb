"""The scifm web app: one Panel server, one module per page under ``app/pages``."""
