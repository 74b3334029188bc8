"""The aiohttp server: webhooks, /healthz, /metrics, downloads and the dashboard."""
