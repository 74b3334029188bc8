"""The ward dashboard: routes, pages, feedback handling, charts, downloads."""
