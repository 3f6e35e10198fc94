"""What a study produced: status, exported configuration, report, dashboard."""
