"""What docchat shows to the people who run it: Prometheus metrics, OpenTelemetry traces and
the ids its log lines carry (docs/observability.md)."""
