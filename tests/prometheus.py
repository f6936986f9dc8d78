"""Reading /metrics as Prometheus does: through prometheus_client's own parser."""

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str | bytes) -> dict[str, float]:
    """Every sample by name, with its labels as written: `ssehub_published_total`,
    `ssehub_publishes_total{outcome="ok"}` (labels sorted by name)."""
    if isinstance(text, bytes):
        text = text.decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{name}="{value}"' for name, value in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found
