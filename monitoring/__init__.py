"""List metrics, Evidently reports and dashboards over the serving log."""
