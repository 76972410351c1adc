"""The overdue-risk model: fitting, the scorecard, explanations, metrics, drift, the report, batch scoring."""
